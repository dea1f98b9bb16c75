"""A hostile host's link to the conductor: a websocket through the real agent listener, opened
the way an agent opens it, that sends whatever arguments a false agent would.

It holds a real certificate of the hosts CA for its own name, as an enrolled host that turned
hostile would: the agent port admits nothing else (tests/cert/test_admission.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
from harness.cloud import Cloud
from harness.config import host_tls_context
from pydantic import RootModel

from cloudd.rpc import RpcDispatcher, RpcPeer
from cloudd.rpc.contracts.compute import HostResources
from cloudd.rpc.contracts.conductor import Registered, RegisterHost


class RawArgs(RootModel[Any]):
    """Arguments sent as they are: what a false agent writes, not what our client models allow."""


class HostileLink:
    def __init__(self, peer: RpcPeer) -> None:
        self.peer = peer

    async def call(self, method: str, **args: Any) -> Any:
        """``conductor.<method>`` (or a full ``network_conductor.<method>``) with raw arguments."""
        name = method if "." in method else "conductor." + method
        result = await self.peer.call(name, RawArgs(args), RawArgs)
        return result.root


def node(name: str) -> HostResources:
    return HostResources(hypervisor_hostname=name, hypervisor_type="fake", hypervisor_version=1,
                         vcpus=64, memory_mb=65536, local_gb=1000, host_ip="127.0.0.1")


@asynccontextmanager
async def hostile_link(cloud: Cloud, register_as: str | None = None,
                       certified_as: str = "evil") -> AsyncIterator[HostileLink]:
    """A link to the agent listener with a certificate for `certified_as`; registered as
    `register_as` (with one node of that name) when given, as a host that got in would be;
    not registered otherwise."""
    tls = await host_tls_context(cloud.host, Path(cloud.cfg.default.state_dir), certified_as)
    async with aiohttp.ClientSession() as session:
        ws = await session.ws_connect(cloud.cfg.agent.controller_url, ssl=tls)
        peer = RpcPeer(ws, RpcDispatcher(), name="hostile")
        reader = asyncio.create_task(peer.run())
        try:
            if register_as is not None:
                await peer.call("conductor.register_host",
                                RegisterHost(host=register_as, nodes=[node(register_as)]), Registered)
            yield HostileLink(peer)
        finally:
            await peer.close()
            await reader
