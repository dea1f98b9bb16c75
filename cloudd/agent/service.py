"""The agent (``cloudd agent``): one per compute host, or one for many simulated hosts.

It connects to the controller's ``/agent`` websocket (mutual TLS with the certificate its
enrolment gave it: ``cloudd.agent.tls``), registers its nodes, reconciles its guests
(``ComputeManager.init_host``), then heartbeats and serves ``compute.*`` over the same socket.
A dropped link is noticed by websocket pings, and the agent reconnects with exponential
backoff and registers again; the compute manager and its driver live on across reconnections.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import aiohttp

from cloudd.agent.compute.drivers.base import load_driver
from cloudd.agent.compute.manager import ComputeManager
from cloudd.agent.conductor_client import ConductorClient
from cloudd.agent.health import HostHealth
from cloudd.agent.hostcheck import host_problems, instances_path_problem
from cloudd.agent.network.manager import NetworkManager, networks_path
from cloudd.agent.tls import agent_ssl_context
from cloudd.cert.common import CertError
from cloudd.config import CloudConfig
from cloudd.core import Service, ServiceHealth, ServiceHost, StartupRefused
from cloudd.rpc import RpcConnectionLost, RpcDispatcher, RpcError, RpcPeer
from cloudd.rpc.contracts.compute import PREFIX as COMPUTE_PREFIX
from cloudd.rpc.contracts.conductor import Heartbeat, Registered, RegisterHost
from cloudd.rpc.contracts.network import PREFIX as NETWORK_PREFIX
from cloudd.rpc.endpoint import AgentEndpoint

LOG = logging.getLogger(__name__)
BINARY = "cloudd-compute"
FIRST_BACKOFF = 0.5
RESOURCE_REPORT_INTERVAL = 60.0  # Nova's periodic task pass


def driver_options(cfg: CloudConfig) -> dict[str, Any]:
    """Keyword arguments of the configured driver's constructor."""
    compute = cfg.compute
    if compute.compute_driver == "fake":
        return {"host_count": compute.fake_host_count, "vcpus": compute.fake_vcpus,
                "memory_mb": compute.fake_memory_mb, "local_gb": compute.fake_local_gb,
                "host_ip": cfg.default.my_ip, "vnc_listen": cfg.vnc.vncserver_listen,
                "delays": _parse_delays(compute.fake_delays)}
    if compute.compute_driver == "libvirt":
        return {"instances_path": compute.instances_path or "instances",
                "connection_uri": cfg.libvirt.connection_uri, "virt_type": cfg.libvirt.virt_type,
                "vnc_enabled": cfg.vnc.enabled, "vncserver_listen": cfg.vnc.vncserver_listen,
                "vnc_host": cfg.vnc.vncserver_proxyclient_address, "host_ip": cfg.default.my_ip,
                "image_url_template": _image_url_template(cfg.agent.controller_url)}
    return {}


def _image_url_template(controller_url: str) -> str:
    """wss://ctl:8780/agent -> https://ctl:8780/images/{id}: the controller's image download
    route (on the agent listener's port), where the libvirt driver fetches images it has not
    cached."""
    first = controller_url.split(",")[0].strip()
    rest = first.partition("://")[2]
    return f"https://{rest.split('/')[0]}/images/{{id}}"


def tls_url(url: str) -> str:
    """The agent listener is TLS only: a ws:// URL is dialled as wss://."""
    return "wss://" + url[len("ws://"):] if url.startswith("ws://") else url


def _parse_delays(text: str) -> dict[str, float]:
    """'spawn=2, reboot=0.5' -> {"spawn": 2.0, "reboot": 0.5} (the config pattern checked it)."""
    pairs = (item.split("=") for item in text.split(",") if item.strip())
    return {name.strip(): float(value) for name, value in pairs}


class AgentHealth(ServiceHealth):
    host: str
    connected: bool
    controller_url: str
    last_heartbeat: float | None  # None until the first heartbeat


class AgentService(Service):
    name = "agent"

    def __init__(self, host: ServiceHost, depends: tuple[str, ...] = ()) -> None:
        super().__init__(host)
        self.depends = depends
        cfg = host.config
        self.host_name = cfg.default.host or socket.gethostname()
        self.tls: ssl.SSLContext | None = None  # from enrolment, loaded at the first connection
        options = driver_options(cfg)
        if cfg.compute.compute_driver == "libvirt":
            options["image_tls"] = self.transfer_tls
        self.driver = load_driver(cfg.compute.compute_driver, options)
        self.conductor = ConductorClient()
        instances_path = cfg.compute.instances_path or "instances"
        self.manager = ComputeManager(self.host_name, self.driver, self.conductor, instances_path)
        self.manager.controller_url = self._url  # snapshots go up over the same listener
        self.manager.transfer_tls = self.transfer_tls
        self.manager.running_deleted_instance_action = cfg.default.running_deleted_instance_action
        self.dispatcher = RpcDispatcher()
        self.dispatcher.register(self.manager, prefix=COMPUTE_PREFIX)
        # The network manager shares the link: network.* calls, lease reports, releases.
        self.network = NetworkManager.from_config(self.host_name, cfg, networks_path(cfg))
        self.dispatcher.register(self.network, prefix=NETWORK_PREFIX)
        self.manager.network = self.network
        # compute.host_health: what `cloudd manage status` asks of each host (read-only).
        self.dispatcher.register(HostHealth(
            self.host_name, cfg.compute.compute_driver, self.driver, self.network,
            cfg.libvirt.connection_uri, cfg), prefix=COMPUTE_PREFIX)
        # Several URLs (comma-separated) name several controllers of one cloud (scale-out on
        # PostgreSQL): when the link to one fails, the agent moves on to the next.
        self.controller_urls = [tls_url(u.strip()) for u in cfg.agent.controller_url.split(",")
                                if u.strip()]
        self._url_index = 0
        self.registered: Registered | None = None
        self.last_heartbeat: float | None = None
        self.connections = 0  # successful registrations so far (1 + reconnections)
        self._session: aiohttp.ClientSession | None = None
        self._peer: RpcPeer | None = None
        self._reconciled = False

    def transfer_tls(self) -> ssl.SSLContext:
        """The client context for the controller's image routes (same admission as the link)."""
        if self.tls is None:
            raise CertError("this agent has not connected to the controller yet")
        return self.tls

    @property
    def connected(self) -> bool:
        return self._peer is not None and not self._peer.closed and self.registered is not None

    async def start(self) -> None:
        """Check the host, start the driver and the connection task; never waits for the
        controller. A host that cannot work as configured is refused (StartupRefused)."""
        await self._refuse_unless(await host_problems(self.host.config, instances=False))
        await self.manager.init_driver()
        if self.host.config.compute.compute_driver == "libvirt":  # made by init_driver
            path = Path(self.host.config.compute.instances_path or "instances")
            await self._refuse_unless([await asyncio.to_thread(instances_path_problem, path)])
        await self.network.start()
        self._session = aiohttp.ClientSession()
        self.host.create_task(self._connection_loop, "agent link", self, restart=True)
        cfg = self.host.config
        self.host.periodic(cfg.service.report_interval, self._heartbeat, "agent heartbeat", self)
        self.host.periodic(cfg.agent.sync_power_state_interval, self._sync_power_states,
                           "sync power states", self)
        self.host.periodic(RESOURCE_REPORT_INTERVAL, self._report_resources,
                           "update available resource", self)
        self.host.periodic(cfg.default.running_deleted_instance_poll_interval,
                           self._check_host_domains, "running deleted instances", self)

    async def _refuse_unless(self, problems: Sequence[str | None]) -> None:
        found = [problem for problem in problems if problem]
        if found:
            for problem in found[1:]:
                LOG.error("also: %s", problem)
            raise StartupRefused(found[0])

    async def stop(self) -> None:
        peer, self._peer = self._peer, None
        self.registered = None
        if peer is not None:
            await peer.close()
        if self._session is not None:
            await self._session.close()
            self._session = None
        await self.manager.cleanup_host()
        await self.network.stop()

    def health(self) -> AgentHealth:
        return AgentHealth(**self.state_fields(), host=self.host_name, connected=self.connected,
                           controller_url=self._url(), last_heartbeat=self.last_heartbeat)

    # ----- the link -----------------------------------------------------------------------

    async def _connection_loop(self) -> None:
        backoff = FIRST_BACKOFF
        max_backoff = self.host.config.agent.reconnect_max_backoff
        while True:
            try:
                await self._connect_and_serve()
                backoff = FIRST_BACKOFF  # it was up: the next try comes quickly
                LOG.warning("lost the link to the controller, reconnecting")
            except (aiohttp.ClientError, OSError, TimeoutError, RpcError, CertError) as exc:
                LOG.warning("cannot reach the controller at %s: %s (retry in %.1fs)",
                            self._url(), exc, backoff)
            self._url_index = (self._url_index + 1) % len(self.controller_urls)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, max_backoff)

    async def _connect_and_serve(self) -> None:
        """One connection's life: connect, register, reconcile, serve until it drops."""
        assert self._session is not None
        cfg = self.host.config
        # Mutual TLS with the certificate enrolment gave this host (enrolling first if needed).
        self.tls = await agent_ssl_context(self.host, self.host_name, self._url())
        # Pings after link_heartbeat of silence: a dead peer is noticed without waiting for TCP.
        # The handshake is bounded the same way: a SYN or TLS hello lost in a partition would
        # otherwise hold this attempt for minutes after the network is back.
        async with asyncio.timeout(2 * cfg.rpc.link_heartbeat):
            ws = await self._session.ws_connect(
                self._url(), heartbeat=cfg.rpc.link_heartbeat, max_msg_size=64 * 1024 * 1024,
                ssl=self.tls)
        peer = RpcPeer(ws, self.dispatcher, name="controller",
                       default_timeout=cfg.rpc.call_timeout)
        peer.identity = "controller"
        reader = asyncio.create_task(peer.run(), name="agent rpc reader")
        try:
            self._peer = peer
            self.conductor.peer = peer
            await self._register()
            self.conductor.link_ready(peer)  # reports queued while the link was down go now
            await self.network.init_host_safely(peer)
            # Again on every reconnection: what ended while the link was down could not report.
            await self.manager.init_host(relink=self._reconciled)
            self._reconciled = True
            await self._heartbeat()
            await reader
        finally:
            self.registered = None
            self.conductor.link_lost()
            if not reader.done():
                reader.cancel()
            # Not peer.close(): actions still running finish over the next link.
            await ws.close()

    async def _register(self) -> None:
        nodes = await self.manager.node_resources()
        request = RegisterHost(host=self.host_name, binary=BINARY, nodes=nodes,
                               availability_zone=self.host.config.agent.availability_zone)
        self.registered = await self.conductor.register_host(request)
        await self.manager.set_cloud_id(self.registered.cloud_id)
        self.connections += 1
        LOG.info("registered %s with %d node(s) as service %s", self.host_name, len(nodes),
                 self.registered.service_id)

    def _url(self) -> str:
        """The configured URL; in the all-in-one, the controller's listener on loopback (its
        port may have been chosen by the OS)."""
        if self.depends:
            endpoint = self.host.find(AgentEndpoint)
            port = endpoint.port if endpoint is not None else None
            if port:
                return f"wss://127.0.0.1:{port}/agent"
        return self.controller_urls[self._url_index]

    # ----- periodic work (skipped while disconnected) -------------------------------------

    async def _heartbeat(self) -> None:
        if not self.connected:
            return
        try:
            await self.conductor.heartbeat(Heartbeat(host=self.host_name, binary=BINARY))
        except RpcConnectionLost:
            return
        self.last_heartbeat = time.time()

    async def _sync_power_states(self) -> None:
        if self.connected and self._reconciled:
            await self.manager.sync_power_states()

    async def _check_host_domains(self) -> None:
        if self.connected and self._reconciled:
            await self.manager.check_host_domains()

    async def _report_resources(self) -> None:
        if self.connected:
            await self.manager.update_available_resource()


def build_agent(cfg: CloudConfig, host: ServiceHost | None = None) -> ServiceHost:
    """The agent's ServiceHost, or the agent added to the controller's (all-in-one), where it
    starts after the conductor's listener it connects to."""
    if host is None:
        host = ServiceHost(cfg, name="cloudd-agent")
        depends: tuple[str, ...] = ()
    else:
        endpoint = host.find(AgentEndpoint)
        depends = (endpoint.name,) if endpoint is not None else ()
    host.add(AgentService(host, depends))
    return host
