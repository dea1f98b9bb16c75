"""What a typed client needs of a link to the other side: ``RpcPeer`` (our own websocket) and
the conductor's ``RemoteLink`` (a relay through the controller that holds the agent) both are one."""

from __future__ import annotations

from typing import Any, Protocol, TypeVar, overload

from pydantic import BaseModel

T = TypeVar("T", bound=BaseModel)


class RpcLink(Protocol):
    # The address the other end connects from (an agent's host address), if known.
    remote_address: str | None

    @overload
    async def call(
        self, method: str, args: BaseModel | None, result_type: type[T], *,
        timeout: float | None = None,  # noqa: ASYNC109 - it also travels to the callee
    ) -> T: ...

    @overload
    async def call(
        self, method: str, args: BaseModel | None = None, result_type: None = None, *,
        timeout: float | None = None,  # noqa: ASYNC109 - it also travels to the callee
    ) -> None: ...

    async def call(
        self, method: str, args: BaseModel | None = None, result_type: type[T] | None = None, *,
        timeout: float | None = None,  # noqa: ASYNC109 - it also travels to the callee
    ) -> Any: ...

    async def cast(self, method: str, args: BaseModel | None = None) -> None: ...
