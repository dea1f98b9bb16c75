"""Mutual TLS on the agent websocket (always on): a controller and a separate agent (its own
ServiceHost, as in its own process) that enrolls with a join token, over real TLS on loopback."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from harness.cloud import start_controller, wait_for
from harness.config import make_config

from cloudd.agent.service import AgentService, build_agent
from cloudd.cert.enroll import enroll_host
from cloudd.cert.service import CertService
from cloudd.conductor.service import ConductorService
from cloudd.config import CloudConfig
from cloudd.core import ServiceHost
from cloudd.db.service import DatabaseService


@pytest.fixture
async def controller(tmp_path: Path) -> AsyncIterator[tuple[ServiceHost, CloudConfig]]:
    cfg = make_config(f"sqlite:///{tmp_path}/cloudd.db", tmp_path)
    host = await start_controller(cfg)
    try:
        yield host, cfg
    finally:
        await host.stop()


def agent_config(cfg: CloudConfig, tmp_path: Path, join_token: str = "") -> CloudConfig:
    agent_cfg = cfg.model_copy(deep=True)
    agent_cfg.default.state_dir = str(tmp_path / "agent-state")
    agent_cfg.cert.join_token = join_token
    return agent_cfg


async def start_agent(cfg: CloudConfig) -> ServiceHost:
    host = build_agent(cfg)
    await host.start()
    return host


def connected(controller: ServiceHost) -> list[str]:
    return sorted(controller.get(ConductorService).agents)


async def test_an_agent_without_a_certificate_is_refused(
        controller: tuple[ServiceHost, CloudConfig], tmp_path: Path) -> None:
    host, cfg = controller
    # TLS without a client certificate: refused at the handshake.
    no_cert = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    no_cert.check_hostname = False
    no_cert.load_verify_locations(cafile=str(host.get(CertService).hosts_authority.cert_file))
    async with aiohttp.ClientSession() as session:
        with pytest.raises((aiohttp.ClientError, ConnectionError, ssl.SSLError)):
            await session.ws_connect(cfg.agent.controller_url, ssl=no_cert)
        # Plain websocket to a TLS listener: no link either.
        with pytest.raises((aiohttp.ClientError, ConnectionError)):
            await session.ws_connect(cfg.agent.controller_url.replace("wss://", "ws://"))
    # A real agent with no certificate and no join token never registers.
    agent = await start_agent(agent_config(cfg, tmp_path))
    try:
        await asyncio.sleep(1.5)
        assert not agent.get(AgentService).connected
        assert connected(host) == []
    finally:
        await agent.stop()


async def test_an_enrolled_agent_connects_and_a_revoked_one_is_cut_off(
        controller: tuple[ServiceHost, CloudConfig], tmp_path: Path) -> None:
    host, cfg = controller
    db = host.get(DatabaseService).db
    token = await enroll_host(db, "agent1", cfg.cert.ca_path)
    agent_cfg = agent_config(cfg, tmp_path, token)
    agent = await start_agent(agent_cfg)
    try:
        async def registered() -> bool:
            return connected(host) == ["agent1"] and agent.get(AgentService).connected

        await wait_for(registered, 20, "the enrolled agent to register")
        cert_dir = Path(agent_cfg.default.state_dir) / "agent-cert"
        assert (cert_dir / "key.pem").stat().st_mode & 0o077 == 0
        # The join token was used up.
        async with aiohttp.ClientSession() as session:
            url = f"https://127.0.0.1:{host.get(ConductorService).enroll_port}/enroll"
            async with session.post(url, json={"token": token, "csr": "x"}, ssl=False) as resp:
                assert resp.status == 403

        assert await host.get(CertService).revoke_certs_by_host("agent1") == 1

        async def cut_off() -> bool:
            return connected(host) == [] and not agent.get(AgentService).connected

        await wait_for(cut_off, 10, "the revoked agent to be cut off")
        await asyncio.sleep(2.0)  # it keeps trying to reconnect (backoff <= 1 s) and is refused
        assert connected(host) == []
    finally:
        await agent.stop()


async def test_an_agent_cannot_register_as_another_host(
        controller: tuple[ServiceHost, CloudConfig], tmp_path: Path) -> None:
    host, cfg = controller
    token = await enroll_host(host.get(DatabaseService).db, "other-host", cfg.cert.ca_path)
    agent_cfg = agent_config(cfg, tmp_path, token)
    agent = await start_agent(agent_cfg)  # its name is agent1
    db = host.get(DatabaseService).db
    try:
        cert_file = Path(agent_cfg.default.state_dir) / "agent-cert" / "cert.pem"

        async def enrolled() -> bool:
            return cert_file.exists()

        await wait_for(enrolled, 10, "the agent to enroll")  # as other-host
        await asyncio.sleep(1.5)
        assert connected(host) == []
        # Its register_host for agent1 was refused before anything was written.
        assert await db.fetchval("SELECT COUNT(*) FROM services") == 0
        assert await db.fetchval("SELECT COUNT(*) FROM compute_nodes") == 0
    finally:
        await agent.stop()
