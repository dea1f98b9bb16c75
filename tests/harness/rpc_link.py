"""An RPC link: a real aiohttp server on 127.0.0.1 and a real client websocket, with an RpcPeer on
each end."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass

import aiohttp
from aiohttp import web

from cloudd.rpc import RpcDispatcher, RpcPeer


@dataclass
class Link:
    controller: RpcPeer  # the server end (accepted websocket)
    agent: RpcPeer  # the client end (ws_connect)
    agent_ws: aiohttp.ClientWebSocketResponse
    url: str
    session: aiohttp.ClientSession
    accepted: asyncio.Queue[RpcPeer]  # server ends of any further connections to url


@dataclass
class AgentListener:
    """A websocket endpoint on 127.0.0.1 at ``/agent``: an RpcPeer on each accepted socket."""

    url: str
    accepted: asyncio.Queue[RpcPeer]  # the controller's ends, in the order they connected
    peers: list[RpcPeer]  # the same, kept
    runner: web.AppRunner


async def listen_for_agents(dispatcher: RpcDispatcher, *, port: int = 0,
                            ssl_context: ssl.SSLContext | None = None,
                            default_timeout: float = 60.0) -> AgentListener:
    accepted: asyncio.Queue[RpcPeer] = asyncio.Queue()
    peers: list[RpcPeer] = []

    async def agent_socket(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        peer = RpcPeer(ws, dispatcher, name="agent", default_timeout=default_timeout)
        peers.append(peer)
        accepted.put_nowait(peer)
        await peer.run()
        return ws

    app = web.Application()
    app.router.add_get("/agent", agent_socket)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port, ssl_context=ssl_context).start()
    host, bound = runner.addresses[0][:2]
    scheme = "wss" if ssl_context else "http"
    return AgentListener(f"{scheme}://{host}:{bound}/agent", accepted, peers, runner)


@asynccontextmanager
async def open_link(
    controller_dispatcher: RpcDispatcher,
    agent_dispatcher: RpcDispatcher,
    default_timeout: float = 60.0,
) -> AsyncIterator[Link]:
    listener = await listen_for_agents(controller_dispatcher, default_timeout=default_timeout)
    url, runner = listener.url, listener.runner
    session = aiohttp.ClientSession()
    agent_ws = await session.ws_connect(url)
    agent = RpcPeer(agent_ws, agent_dispatcher, name="controller", default_timeout=default_timeout)
    agent_reader = asyncio.create_task(agent.run())
    controller = await asyncio.wait_for(listener.accepted.get(), 5)
    try:
        yield Link(controller, agent, agent_ws, url, session, listener.accepted)
    finally:
        await agent.close()
        await agent_reader
        await controller.close()
        await session.close()
        await runner.cleanup()


LinkFactory = Callable[..., AbstractAsyncContextManager[Link]]
