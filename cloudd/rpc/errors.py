"""Typed RPC errors: what a handler raises on one side is what the caller catches on the other.

Every error class carries a wire ``code``. Subclasses that set their own ``code`` are registered,
so an error frame with that code is raised on the calling side as an instance of the same class;
an unknown code comes back as a plain ``RpcError`` that still carries the code.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar


class RpcError(Exception):
    """Base of every RPC failure; ``RpcError("msg", code="quota_exceeded")`` needs no subclass."""

    code: str = "rpc_error"
    _classes_by_code: ClassVar[dict[str, type[RpcError]]] = {}

    def __init__(
        self,
        message: str = "",
        details: Mapping[str, Any] | None = None,
        *,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code or type(self).code
        self.message = message
        self.details: dict[str, Any] = dict(details or {})

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "code" in cls.__dict__:
            taken = RpcError._classes_by_code.get(cls.code)
            if taken is not None and taken.__qualname__ != cls.__qualname__:
                # Two classes for one code: the caller would get whichever loaded last.
                raise TypeError(f"RPC error code {cls.code!r} is already {taken.__qualname__}")
            RpcError._classes_by_code[cls.code] = cls

    def __str__(self) -> str:
        return f"{self.code}: {self.message}" if self.message else self.code

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, message={self.message!r})"


class RemoteError(RpcError):
    """The remote handler raised an unexpected exception; its traceback is in the remote log."""

    code = "internal"


class RpcTimeout(RpcError):
    code = "timeout"


class RpcConnectionLost(RpcError):
    """The websocket closed (or was never open): no reply will come."""

    code = "connection_lost"


class UnknownMethod(RpcError):
    code = "unknown_method"


class BadPayload(RpcError):
    """Arguments, result or envelope failed validation; the message names the field."""

    code = "bad_payload"


def error_from_wire(code: str, message: str, details: Mapping[str, Any] | None = None) -> RpcError:
    """Rebuild the exception a remote handler raised, as the class registered for its code.

    The subclass's own ``__init__`` is bypassed because it may take other arguments than the base.
    """
    error_class = RpcError._classes_by_code.get(code, RpcError)
    error = error_class.__new__(error_class)
    RpcError.__init__(error, message, details, code=code)
    return error
