"""A real aiohttp server on 127.0.0.1 and a real client websocket, with an RpcPeer on each end."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass

import aiohttp
import pytest
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


@asynccontextmanager
async def open_link(
    controller_dispatcher: RpcDispatcher,
    agent_dispatcher: RpcDispatcher,
    default_timeout: float = 60.0,
) -> AsyncIterator[Link]:
    accepted: asyncio.Queue[RpcPeer] = asyncio.Queue()

    async def agent_socket(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        peer = RpcPeer(ws, controller_dispatcher, name="agent", default_timeout=default_timeout)
        accepted.put_nowait(peer)
        await peer.run()
        return ws

    app = web.Application()
    app.router.add_get("/agent", agent_socket)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    url = f"http://{host}:{port}/agent"
    session = aiohttp.ClientSession()
    agent_ws = await session.ws_connect(url)
    agent = RpcPeer(agent_ws, agent_dispatcher, name="controller", default_timeout=default_timeout)
    agent_reader = asyncio.create_task(agent.run())
    controller = await asyncio.wait_for(accepted.get(), 5)
    try:
        yield Link(controller, agent, agent_ws, url, session, accepted)
    finally:
        await agent.close()
        await agent_reader
        await controller.close()
        await session.close()
        await runner.cleanup()


LinkFactory = Callable[..., AbstractAsyncContextManager[Link]]


@pytest.fixture
def link_factory() -> LinkFactory:
    return open_link
