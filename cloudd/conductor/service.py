"""The conductor service: the agents' websocket listener and their only door to the database.

Each agent connects to ``ws://controller:<rpc port>/agent``; the connection becomes an RpcPeer
that serves the conductor's methods to the agent and lets the controller call the agent's
compute manager. ``peer_for(host)`` finds the link to a host.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiohttp import web

from cloudd.api.image.transfer import add_agent_routes
from cloudd.conductor.cluster import Cluster, RemoteLink
from cloudd.conductor.manager import ConductorManager
from cloudd.conductor.rpcapi import PREFIX
from cloudd.core import Service, ServiceHost
from cloudd.listener import Listener
from cloudd.rpc import RpcDispatcher, RpcError, RpcPeer

LOG = logging.getLogger(__name__)


class HostUnavailable(Exception):
    def __init__(self, host: str) -> None:
        self.host = host
        super().__init__(f"compute host {host} is not connected")


class ConductorService(Service):
    name = "conductor"
    depends: tuple[str, ...] = ("database", "scheduler")

    def __init__(self, host: ServiceHost) -> None:
        super().__init__(host)
        self.manager = ConductorManager(host, self)
        self.dispatcher = RpcDispatcher()
        self.dispatcher.register(self.manager, prefix=PREFIX)
        self.agents: dict[str, RpcPeer] = {}
        self._agent_changed = asyncio.Condition()
        self.cluster: Cluster | None = None
        self.listener = Listener()
        self.port: int | None = None
        # [cert] agent_tls: mutual TLS, and each link's host name from its certificate.
        self.tls = host.config.cert.agent_tls
        self.depends = (*self.depends, "cert") if self.tls else self.depends
        self.certified_hosts: dict[RpcPeer, str] = {}

    async def start(self) -> None:
        cfg = self.host.config.rpc
        app = web.Application()
        app.router.add_get("/agent", self._agent_socket)
        add_agent_routes(app, self.host)  # image bytes to and from agents
        ssl_context = None
        if self.tls:
            from cloudd.cert.agent_tls import add_enrolment_routes
            from cloudd.cert.service import CertService

            add_enrolment_routes(app, self.host.get(CertService))
            ssl_context = self.host.get(CertService).server_ssl_context()
        self.port = await self.listener.start(app, cfg.listen, cfg.port, ssl_context)
        LOG.info("agent listener on %s:%s", cfg.listen, self.port)
        from cloudd.db.service import DatabaseService

        self.cluster = Cluster(self, self.host.get(DatabaseService).db)
        await self.cluster.start()
        self.host.periodic(30.0, self.cluster.refresh, "cluster links", self)
        await self.manager.start()

    async def stop(self) -> None:
        await self.manager.stop()
        if self.cluster is not None:
            await self.cluster.stop()
        for peer in list(self.agents.values()):
            await peer.close()
        await self.listener.stop()

    async def _agent_socket(self, request: web.Request) -> web.WebSocketResponse:
        cert_host = await self._admit(request) if self.tls else None
        ws = web.WebSocketResponse(heartbeat=15.0, max_msg_size=64 * 1024 * 1024)
        await ws.prepare(request)
        peer = RpcPeer(ws, self.dispatcher, name=f"agent@{request.remote}",
                       default_timeout=self.host.config.rpc.call_timeout,
                       remote_address=request.remote)
        if cert_host is not None:
            self.certified_hosts[peer] = cert_host
        try:
            await peer.run()
        finally:
            await self.forget(peer)
        return ws

    async def _admit(self, request: web.Request) -> str:
        """The host named by the agent's CA-issued, unrevoked certificate; 403 otherwise."""
        from cloudd.cert.service import CertService

        ssl_object = request.transport.get_extra_info("ssl_object") if request.transport else None
        der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
        cert_host, why = await self.host.get(CertService).verified_agent(der)
        if cert_host is None:
            LOG.warning("refused agent connection from %s: %s", request.remote, why)
            raise web.HTTPForbidden(text=why)
        return cert_host

    async def remember(self, host: str, peer: RpcPeer) -> None:
        """Called when an agent registers: from now on calls for `host` go over `peer`."""
        if self.tls and self.certified_hosts.get(peer) != host:
            raise RpcError(f"this agent's certificate is not for host {host}", code="forbidden")
        old = self.agents.get(host)
        peer.identity = host
        peer.name = f"agent:{host}"
        async with self._agent_changed:
            self.agents[host] = peer
            self._agent_changed.notify_all()
        if self.cluster is not None:
            await self.cluster.announce(host)
        if old is not None and old is not peer:
            LOG.info("agent %s reconnected; closing its old link", host)
            await old.close()

    async def forget(self, peer: RpcPeer) -> None:
        host = peer.identity
        self.certified_hosts.pop(peer, None)
        if host is not None and self.agents.get(host) is peer:
            del self.agents[host]
            LOG.warning("agent %s disconnected", host)
            if self.cluster is not None:
                await self.cluster.forget(host)

    async def peer_for(self, host: str, wait: float = 0.0) -> RpcPeer | RemoteLink:
        """The link to `host`: our own websocket, or a relay through the controller that holds
        it (scale-out on PostgreSQL); waits up to `wait` seconds for a reconnecting agent."""
        deadline = asyncio.get_running_loop().time() + wait
        while True:
            peer = self.agents.get(host)
            if peer is not None and not peer.closed:
                return peer
            owner = await self.cluster.owner(host) if self.cluster is not None else None
            if owner is not None and self.cluster is not None:
                return RemoteLink(self.cluster, owner, host)
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                raise HostUnavailable(host)
            async with self._agent_changed:
                try:
                    await asyncio.wait_for(self._agent_changed.wait(), min(remaining, 1.0))
                except TimeoutError:
                    pass

    async def local_peer(self, host: str) -> RpcPeer:
        peer = self.agents.get(host)
        if peer is None or peer.closed:
            raise HostUnavailable(host)
        return peer

    def health(self) -> dict[str, Any]:
        info = super().health()
        info["agents"] = sorted(self.agents)
        return info
