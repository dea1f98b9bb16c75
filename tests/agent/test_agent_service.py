"""The agent service against a small real controller: an aiohttp websocket server on loopback
(mutual TLS, with a hosts CA of its own that enrolled the agent) serving the conductor's methods,
recording what the agent tells it."""

from __future__ import annotations

import asyncio
import socket
import ssl
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import ec
from harness.rpc_link import listen_for_agents

from cloudd.agent.compute.drivers.base import GuestSpec
from cloudd.agent.service import AgentService, build_agent
from cloudd.cert.ca import (
    CLIENT_AUTH,
    SERVER_AUTH,
    key_pem,
    load_hosts_ca,
    name,
    pem,
    write_private,
    write_public,
)
from cloudd.config import CloudConfig
from cloudd.core import ServiceHost
from cloudd.rpc import RpcContext, RpcDispatcher, RpcPeer, rpc_method
from cloudd.rpc.contracts.compute import ConsoleOutput, ConsoleOutputRequest
from cloudd.rpc.contracts.conductor import (
    ActionEvent,
    BuildFailedReport,
    FaultCreate,
    Heartbeat,
    HostRef,
    InstanceDestroyed,
    InstanceList,
    InstanceNotFoundError,
    InstanceRecord,
    InstanceRef,
    InstanceUpdate,
    NodeUpdate,
    Registered,
    RegisterHost,
)


@dataclass
class ConductorEnd:
    """The conductor's side of the contract, with no database: nothing is stored but reports."""

    registrations: list[RegisterHost] = field(default_factory=list)
    heartbeats: list[Heartbeat] = field(default_factory=list)
    node_updates: list[NodeUpdate] = field(default_factory=list)

    @rpc_method
    async def register_host(self, ctx: RpcContext, args: RegisterHost) -> Registered:
        ctx.peer.identity = args.host
        self.registrations.append(args)
        return Registered(service_id=len(self.registrations), service_uuid="s", report_interval=1)

    @rpc_method
    async def heartbeat(self, ctx: RpcContext, args: Heartbeat) -> None:
        self.heartbeats.append(args)

    @rpc_method
    async def instances_on_host(self, ctx: RpcContext, args: HostRef) -> InstanceList:
        return InstanceList(instances=[])

    @rpc_method
    async def instance_get(self, ctx: RpcContext, args: InstanceRef) -> InstanceRecord:
        raise InstanceNotFoundError(f"Instance {args.uuid} could not be found.")

    @rpc_method
    async def instance_update(self, ctx: RpcContext, args: InstanceUpdate) -> InstanceRecord:
        raise InstanceNotFoundError(f"Instance {args.uuid} could not be found.")

    @rpc_method
    async def action_event(self, ctx: RpcContext, args: ActionEvent) -> None:
        return None

    @rpc_method
    async def fault_create(self, ctx: RpcContext, args: FaultCreate) -> None:
        return None

    @rpc_method
    async def build_failed(self, ctx: RpcContext, args: BuildFailedReport) -> None:
        return None

    @rpc_method
    async def instance_destroyed(self, ctx: RpcContext, args: InstanceDestroyed) -> None:
        return None

    @rpc_method
    async def node_update(self, ctx: RpcContext, args: NodeUpdate) -> None:
        self.node_updates.append(args)


@dataclass
class Controller:
    url: str
    conductor: ConductorEnd
    peers: list[RpcPeer]
    runner: web.AppRunner


def enrolled_tls(tmp_path: Path) -> ssl.SSLContext:
    """The controller's TLS context, from a hosts CA under tmp_path that also gave host agent1
    its certificate (written where the agent of `agent_config` looks for it)."""
    ca = load_hosts_ca(tmp_path / "CA")
    for who, usage, directory in (("controller", SERVER_AUTH, tmp_path / "controller"),
                                  ("agent1", CLIENT_AUTH, tmp_path / "state" / "agent-cert")):
        key = ec.generate_private_key(ec.SECP256R1())
        cert = ca.sign(key.public_key(), name(who), 1, usage=usage, sans=["127.0.0.1"])
        write_private(directory / "key.pem", key_pem(key).encode())
        write_public(directory / "ca.pem", pem(ca.cert))
        write_public(directory / "cert.pem", pem(cert))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(tmp_path / "controller" / "cert.pem", tmp_path / "controller" / "key.pem")
    ctx.load_verify_locations(cafile=str(ca.cert_file))
    ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


async def start_controller(tmp_path: Path, port: int = 0) -> Controller:
    conductor = ConductorEnd()
    dispatcher = RpcDispatcher()
    dispatcher.register(conductor, prefix="conductor.")
    listener = await listen_for_agents(dispatcher, port=port, ssl_context=enrolled_tls(tmp_path),
                                       default_timeout=5)
    return Controller(listener.url, conductor, listener.peers, listener.runner)


def agent_config(url: str, tmp_path: Path) -> CloudConfig:
    cfg = CloudConfig()
    cfg.default.host = "agent1"
    cfg.default.state_dir = str(tmp_path / "state")
    cfg.default.shutdown_timeout = 5
    cfg.agent.controller_url = url
    cfg.agent.reconnect_max_backoff = 0.5
    cfg.service.report_interval = 0.1
    cfg.compute.compute_driver = "fake"
    cfg.compute.fake_host_count = 2
    cfg.compute.instances_path = str(tmp_path / "instances")
    cfg.rpc.call_timeout = 5
    return cfg


async def wait_until(condition: Callable[[], bool], seconds: float = 5.0) -> None:
    async with asyncio.timeout(seconds):
        while not condition():  # noqa: ASYNC110 - state of a server with no event to wait on
            await asyncio.sleep(0.02)


@pytest.fixture
async def controller(tmp_path: Path) -> AsyncIterator[Controller]:
    server = await start_controller(tmp_path)
    yield server
    for peer in server.peers:
        await peer.close()
    await server.runner.cleanup()


@pytest.fixture
async def agent_host(controller: Controller, tmp_path: Path) -> AsyncIterator[ServiceHost]:
    host = build_agent(agent_config(controller.url, tmp_path))
    await host.start()
    yield host
    await host.stop()


async def test_agent_registers_its_nodes_and_heartbeats(
    controller: Controller, agent_host: ServiceHost
) -> None:
    await wait_until(lambda: len(controller.conductor.heartbeats) >= 3)

    [registration] = controller.conductor.registrations
    assert registration.host == "agent1"
    assert [n.hypervisor_hostname for n in registration.nodes] == ["agent1-0", "agent1-1"]
    assert {beat.host for beat in controller.conductor.heartbeats} == {"agent1"}
    health = agent_host.get(AgentService).health()
    assert health.connected is True and health.host == "agent1"
    assert health.last_heartbeat is not None and health.last_heartbeat > time.time() - 5


async def test_controller_calls_the_compute_manager_over_the_link(
    controller: Controller, agent_host: ServiceHost
) -> None:
    agent = agent_host.get(AgentService)
    await wait_until(lambda: agent.connected and agent.manager.ready.is_set())
    uuid = "11111111-2222-3333-4444-555555555555"
    await agent.driver.spawn(GuestSpec(uuid=uuid, name="instance-00000001", vcpus=1,
                                       memory_mb=512, root_gb=1, hostname="web1"), "agent1-0")
    [peer] = controller.peers

    output = await peer.call("compute.get_console_output",
                             ConsoleOutputRequest(uuid=uuid, length=1), ConsoleOutput)
    assert output.output == "web1 login:\n"
    with pytest.raises(InstanceNotFoundError):
        await peer.call("compute.get_console_output", ConsoleOutputRequest(uuid="gone"),
                        ConsoleOutput)


async def test_dropped_link_is_reconnected_and_registered_again(
    controller: Controller, agent_host: ServiceHost
) -> None:
    agent = agent_host.get(AgentService)
    await wait_until(lambda: agent.connected)

    await controller.peers[0].close()  # the controller drops the socket

    await wait_until(lambda: len(controller.conductor.registrations) == 2)
    await wait_until(lambda: agent.connected)
    assert agent.connections == 2
    beats_before = len(controller.conductor.heartbeats)
    await wait_until(lambda: len(controller.conductor.heartbeats) > beats_before)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_start_does_not_wait_for_a_controller_that_is_down(tmp_path: Path) -> None:
    port = free_port()
    host = build_agent(agent_config(f"wss://127.0.0.1:{port}/agent", tmp_path))
    started = time.monotonic()
    await host.start()
    server: Controller | None = None
    try:
        assert time.monotonic() - started < 2
        agent = host.get(AgentService)
        await asyncio.sleep(0.3)
        assert agent.health().connected is False

        server = await start_controller(tmp_path, port)  # the controller comes up later
        await wait_until(lambda: agent.connected)
        assert len(server.conductor.registrations) == 1
    finally:
        await host.stop()
        if server is not None:
            await server.runner.cleanup()


async def test_a_connect_that_hangs_is_given_up_and_tried_again(tmp_path: Path) -> None:
    """A controller address that accepts TCP but never answers the TLS hello (a peer lost in
    a partition, a wedged process): the attempt ends after 2 x link_heartbeat and the agent
    dials again, instead of waiting minutes in the first attempt."""
    enrolled_tls(tmp_path)  # the agent holds its certificate: it goes straight to the link
    accepted: list[asyncio.StreamWriter] = []

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)  # kept open, never answered

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    cfg = agent_config(f"wss://127.0.0.1:{port}/agent", tmp_path)
    cfg.rpc.link_heartbeat = 1.0
    host = build_agent(cfg)
    await host.start()
    try:
        await wait_until(lambda: len(accepted) >= 2, seconds=8)
        assert host.get(AgentService).health().connected is False
    finally:
        await host.stop()
        for writer in accepted:
            writer.close()
        server.close()
        await server.wait_closed()
