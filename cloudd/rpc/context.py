"""Per-call context handed to RPC handlers; the request id that follows a request across hosts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

# One variable for the whole process: the API sets it per HTTP request, RPC sends it with each
# call and sets it around each handler, and the log filter in cloudd.log prints it.
from cloudd.log import request_id_var

if TYPE_CHECKING:
    from cloudd.rpc.peer import RpcPeer

__all__ = ["RpcContext", "request_id_var"]


@dataclass(frozen=True)
class RpcContext:
    """What a handler knows about the call it serves."""

    method: str
    request_id: str | None
    peer: RpcPeer  # the calling side: ``await ctx.peer.call(...)`` calls back over the same link
    timeout: float | None  # how long the caller waits; past it, nobody reads the reply

    @property
    def identity(self) -> str | None:
        """Who the caller is (e.g. the agent's host name), once the owner of the peer has set it."""
        return self.peer.identity
