"""Method table of one side of the link: names -> typed async handlers.

A handler is ``async def name(self, ctx: RpcContext, args: ArgsModel) -> ResultModel | None`` marked
with ``@rpc_method``. Its types are read once, at registration, so a handler with the wrong shape
fails when the service starts, not on the first call.
"""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from cloudd.rpc.context import RpcContext
from cloudd.rpc.errors import BadPayload, UnknownMethod
from cloudd.rpc.messages import describe_validation_error

_MARKER = "__cloudd_rpc_method__"
HandlerFunc = Callable[[RpcContext, Any], Awaitable[BaseModel | None]]
F = TypeVar("F", bound=Callable[..., Any])


def rpc_method(func: F) -> F:
    """Mark a coroutine method as callable over RPC as ``prefix + its name``."""
    setattr(func, _MARKER, True)
    return func


@dataclass(frozen=True)
class RpcHandler:
    name: str
    func: HandlerFunc
    args_type: type[BaseModel]
    result_type: type[BaseModel] | None


class RpcDispatcher:
    def __init__(self) -> None:
        self._handlers: dict[str, RpcHandler] = {}

    def register(self, service: object, prefix: str = "") -> list[str]:
        """Register every ``@rpc_method`` of ``service`` as ``prefix + method name``."""
        registered = []
        for attr_name, member in inspect.getmembers(type(service)):
            if getattr(member, _MARKER, False):
                name = prefix + attr_name
                self.add(name, getattr(service, attr_name))
                registered.append(name)
        if not registered:
            raise ValueError(f"{type(service).__name__} has no @rpc_method methods")
        return registered

    def add(self, name: str, func: HandlerFunc) -> None:
        """Register one handler (a bound method or a plain ``async def (ctx, args)``)."""
        if name in self._handlers:
            raise ValueError(f"RPC method {name!r} is already registered")
        self._handlers[name] = _inspect_handler(name, func)

    @property
    def methods(self) -> list[str]:
        return sorted(self._handlers)

    def handler(self, name: str) -> RpcHandler | None:
        return self._handlers.get(name)

    async def dispatch(self, ctx: RpcContext, raw_args: dict[str, Any]) -> Any:
        """Validate the arguments, run the handler, return its result as JSON-ready data."""
        handler = self._handlers.get(ctx.method)
        if handler is None:
            raise UnknownMethod(f"no RPC method {ctx.method!r}", {"method": ctx.method})
        try:
            args = handler.args_type.model_validate(raw_args)
        except ValidationError as exc:
            message, problems = describe_validation_error(exc)
            raise BadPayload(
                f"invalid arguments for {ctx.method}: {message}",
                {"method": ctx.method, "errors": problems},
            ) from None
        result = await handler.func(ctx, args)
        if result is None:
            return None
        if not isinstance(result, BaseModel):
            raise TypeError(f"{ctx.method} returned {type(result).__name__}, not a pydantic model")
        return result.model_dump(mode="json")


def _inspect_handler(name: str, func: HandlerFunc) -> RpcHandler:
    if not inspect.iscoroutinefunction(func):
        raise TypeError(f"RPC method {name!r} must be an async function")
    params = list(inspect.signature(func).parameters.values())
    if len(params) != 2:
        raise TypeError(f"RPC method {name!r} must take exactly (ctx, args), not {len(params)}")
    hints = typing.get_type_hints(func)
    args_type = hints.get(params[1].name)
    if not (isinstance(args_type, type) and issubclass(args_type, BaseModel)):
        raise TypeError(f"RPC method {name!r}: args must be annotated with a pydantic model")
    if "return" not in hints:
        raise TypeError(f"RPC method {name!r} needs a return annotation (a model or None)")
    return RpcHandler(name, func, args_type, _result_model(name, hints["return"]))


def _result_model(name: str, hint: Any) -> type[BaseModel] | None:
    """Accept ``None``, ``Model`` or ``Model | None`` as a handler's return annotation."""
    if hint is None or hint is types.NoneType:
        return None
    if isinstance(hint, type) and issubclass(hint, BaseModel):
        return hint
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        models = [arg for arg in typing.get_args(hint) if arg is not types.NoneType]
        if len(models) == 1 and isinstance(models[0], type) and issubclass(models[0], BaseModel):
            return models[0]
    raise TypeError(f"RPC method {name!r} must return a pydantic model or None, not {hint!r}")
