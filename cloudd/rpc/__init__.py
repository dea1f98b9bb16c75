"""Typed RPC over an aiohttp websocket, callable in both directions (see docs/architecture.md)."""

from cloudd.rpc.context import RpcContext, request_id_var
from cloudd.rpc.dispatch import RpcDispatcher, rpc_method
from cloudd.rpc.errors import (
    BadPayload,
    RemoteError,
    RpcConnectionLost,
    RpcError,
    RpcTimeout,
    UnknownMethod,
    error_from_wire,
)
from cloudd.rpc.link import RpcLink
from cloudd.rpc.peer import RpcPeer, WebSocketLike

__all__ = [
    "BadPayload",
    "RemoteError",
    "RpcConnectionLost",
    "RpcContext",
    "RpcDispatcher",
    "RpcError",
    "RpcLink",
    "RpcPeer",
    "RpcTimeout",
    "UnknownMethod",
    "WebSocketLike",
    "error_from_wire",
    "request_id_var",
    "rpc_method",
]
