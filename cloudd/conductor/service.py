"""The conductor service: the agents' websocket listener and their only door to the database.

Each agent connects to ``wss://controller:<rpc port>/agent`` with mutual TLS: only a host
enrolled with the hosts CA gets through (see cloudd/cert/admission.py), and its connection is
bound to the host name of its certificate before the first message is read (``peer.identity``).
One live link per host: a second connection for a host that is connected is refused, so nobody
takes a host's place while it runs. The connection becomes an RpcPeer that serves the
conductor's methods to the agent and lets the controller call the agent's compute manager.
``peer_for(host)`` finds the link to a host. The enrolment listener (``[rpc] enroll_port``)
runs beside it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from aiohttp import web

from cloudd.cert.admission import AGENT_HOST, admission_middleware
from cloudd.cert.enrolment_listener import start_enrolment_listener
from cloudd.cert.service import CertService
from cloudd.conductor.cluster import AgentLinks, Cluster, RemoteLink
from cloudd.conductor.cluster import HostUnavailable as HostUnavailable  # where callers look
from cloudd.conductor.manager import ConductorManager
from cloudd.core import ServiceHealth, ServiceHost
from cloudd.db.service import DatabaseService
from cloudd.listener import Listener
from cloudd.rpc import RpcDispatcher, RpcError, RpcPeer
from cloudd.rpc.contracts.conductor import PREFIX
from cloudd.scheduler.request import RequestSpec

LOG = logging.getLogger(__name__)
# Adds HTTP routes to the agent listener's app (behind its admission), given the service host.
AgentRoutes = Callable[[web.Application, ServiceHost], None]


class ConductorHealth(ServiceHealth):
    agents: list[str]  # the hosts whose agents are linked (cloudd manage status lists them)


class ConductorService(AgentLinks):
    name = "conductor"
    depends: tuple[str, ...] = ("database", "scheduler", "cert")

    def __init__(self, host: ServiceHost) -> None:
        super().__init__(host)
        self.manager = ConductorManager(host, self)
        self.dispatcher = RpcDispatcher()
        self.dispatcher.register(self.manager, prefix=PREFIX)
        self.agents: dict[str, RpcPeer] = {}  # registered hosts
        self.links: dict[str, RpcPeer] = {}  # admitted connections, by certificate host name
        self._agent_changed = asyncio.Condition()
        self.cluster: Cluster | None = None
        self.listener = Listener()
        self.port: int | None = None
        self.enrolment: Listener | None = None
        self.enroll_port: int | None = None
        self.agent_routes: list[AgentRoutes] = []

    def mount_agent_routes(self, add_routes: AgentRoutes) -> None:
        """Serve more on the agent listener (the image bytes, from cloudd.api.image): the
        assembly passes them in, so the conductor imports no API package."""
        self.agent_routes.append(add_routes)

    async def start(self) -> None:
        cfg = self.host.config.rpc
        cert = self.host.get(CertService)
        cert.agent_links = self.links  # revoking a host closes its live link (see CertService)
        # Admission first: no handler on this listener runs for a peer that is not enrolled.
        app = web.Application(middlewares=[admission_middleware(cert)])
        app.router.add_get("/agent", self._agent_socket)
        for add_routes in self.agent_routes:
            add_routes(app, self.host)
        self.port = await self.listener.start(app, cfg.listen, cfg.port, cert.server_ssl_context())
        LOG.info("agent listener (mutual TLS) on %s:%s", cfg.listen, self.port)
        self.enrolment = await start_enrolment_listener(cert, cfg.listen, cfg.enroll_port)
        self.enroll_port = self.enrolment.port
        LOG.info("enrolment listener on %s:%s", cfg.listen, self.enroll_port)
        self.cluster = Cluster(self, self.host.get(DatabaseService).db)
        await self.cluster.start()
        self.host.periodic(30.0, self.cluster.refresh, "cluster links", self)
        self.host.periodic(3600.0, self.manager.forget_old_reports, "forget applied reports",
                           self)
        await self.manager.start()

    async def stop(self) -> None:
        await self.manager.stop()
        if self.cluster is not None:
            await self.cluster.stop()
        if self.enrolment is not None:
            await self.enrolment.stop()
        for peer in list(self.links.values()):
            await peer.close()
        await self.listener.stop()

    async def _agent_socket(self, request: web.Request) -> web.WebSocketResponse:
        host_name = request[AGENT_HOST]
        current = self.links.get(host_name)
        if current is not None and not current.closed:
            LOG.warning("refused a second connection for host %s from %s: its link from %s is up",
                        host_name, request.remote, current.remote_address)
            raise web.HTTPConflict(text=f"host {host_name} is already connected")
        # Pings after link_heartbeat of silence, as the agent's end does: a dead agent is let go.
        ws = web.WebSocketResponse(heartbeat=self.host.config.rpc.link_heartbeat,
                                   max_msg_size=64 * 1024 * 1024)
        peer = RpcPeer(ws, self.dispatcher, name=f"agent:{host_name}",
                       default_timeout=self.host.config.rpc.call_timeout,
                       remote_address=request.remote)
        # Bound before the first message is read: every call on this link is this host's.
        peer.identity = host_name
        self.links[host_name] = peer  # before any await: a racing second connection sees it
        try:
            await ws.prepare(request)
            await peer.run()
        finally:
            if self.links.get(host_name) is peer:
                del self.links[host_name]
            await self.forget(peer)
        return ws

    def check_host(self, peer: RpcPeer, host: str) -> None:
        """Refuse an agent acting as another host than its certificate's (before any write)."""
        if peer.identity != host:
            LOG.warning("agent %s tried to act as host %s", peer.identity, host)
            raise RpcError(f"this agent's certificate is for host {peer.identity}, not {host}",
                           code="forbidden")

    async def remember(self, host: str, peer: RpcPeer) -> None:
        """Called when an agent registers: from now on calls for `host` go over `peer`."""
        self.check_host(peer, host)
        old = self.agents.get(host)
        async with self._agent_changed:
            self.agents[host] = peer
            self._agent_changed.notify_all()
        if self.cluster is not None:
            await self.cluster.announce(host)
        if old is not None and old is not peer:
            # Only a link already gone can be here (a live one keeps others out); make sure.
            await old.close()

    async def forget(self, peer: RpcPeer) -> None:
        host = peer.identity
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

    # ----- what the compute API asks (cloudd.frontdoor.compute_create.BuildScheduler) ------------------
    async def cloud_id(self) -> str:
        """This cloud's id (instance names may carry it)."""
        return await self.manager.cloud_id()

    def schedule_build(self, uuids: list[str], spec: RequestSpec, request_id: str) -> None:
        """Schedule and build the new instances in the background (the API answers 202)."""
        self.manager.builder.schedule(uuids, spec, request_id)

    def health(self) -> ConductorHealth:
        return ConductorHealth(**self.state_fields(), agents=sorted(self.agents))
