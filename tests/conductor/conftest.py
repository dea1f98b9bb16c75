"""A running cloud in this process: the controller's services and one agent (fake driver), talking
over a real websocket on loopback, on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
import socket
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from loopback import enroll_agent

from cloudd.agent.service import AgentService, build_agent
from cloudd.api.identity.bootstrap import ensure_flavors
from cloudd.compute import quota
from cloudd.compute.api import BuildRequest, ComputeAPI
from cloudd.compute.instances import get as get_instance
from cloudd.config import CloudConfig, resolve_paths
from cloudd.controller import build_controller
from cloudd.core import ServiceHost
from cloudd.db import Database
from cloudd.db.service import DatabaseService


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def make_config(db_url: str, tmp_path: Path, **compute: Any) -> CloudConfig:
    cfg = CloudConfig()
    cfg.default.state_dir = str(tmp_path / "state")
    cfg.default.host = "agent1"
    cfg.database.connection = db_url
    cfg.api.port = 0
    cfg.api.listen = "127.0.0.1"
    cfg.rpc.listen = "127.0.0.1"
    # Every listener on an ephemeral port: tests may run beside a real cloud or each other.
    cfg.objectstore.listen = cfg.vnc.novncproxy_host = "127.0.0.1"
    cfg.objectstore.port = cfg.vnc.novncproxy_port = 0
    cfg.rpc.port = free_port()
    cfg.rpc.enroll_port = free_port()
    cfg.agent.controller_url = f"wss://127.0.0.1:{cfg.rpc.port}/agent"
    cfg.agent.reconnect_max_backoff = 1.0
    cfg.service.report_interval = 0.5
    cfg.service.service_down_time = 3.0
    cfg.compute.compute_driver = "fake"
    cfg.compute.reserved_host_memory_mb = 0
    for key, value in compute.items():
        setattr(cfg.compute, key, value)
    return resolve_paths(cfg)


async def wait_for(predicate: Callable[[], Awaitable[bool]], limit: float = 20.0,
                   what: str = "condition") -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if await predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out after {limit}s waiting for {what}")


@dataclass
class Cloud:
    host: ServiceHost  # the controller
    cfg: CloudConfig
    api: ComputeAPI
    agent_host: ServiceHost  # the agent: its own service host, as in its own process

    @property
    def db(self) -> Database:
        return self.host.get(DatabaseService).db

    @property
    def agent(self) -> AgentService:
        return self.agent_host.get(AgentService)

    async def stop(self) -> None:
        await self.agent_host.stop()
        await self.host.stop()

    async def flavor(self, name: str = "m1.tiny") -> dict[str, Any]:
        row = await self.db.fetchrow("SELECT * FROM flavors WHERE name = $1", name)
        assert row is not None
        return row

    async def boot(self, name: str = "vm", flavor: str = "m1.tiny", count: int = 1,
                   **kw: Any) -> tuple[list[dict[str, Any]], str]:
        request_id = f"req-{uuid.uuid4()}"
        req = BuildRequest(name=name, flavor=await self.flavor(flavor), project_id="p1",
                           user_id="u1", image_ref=str(uuid.uuid4()), min_count=count,
                           max_count=count, **kw)
        return await self.api.create(req, request_id), request_id

    async def instance(self, uuid_: str) -> dict[str, Any]:
        return await get_instance(self.db, uuid_, include_deleted=True)

    async def wait_state(self, uuid_: str, vm_state: str, task_state: Any = None,
                         limit: float = 20.0) -> dict[str, Any]:
        async def reached() -> bool:
            row = await self.instance(uuid_)
            return bool(row["vm_state"] == vm_state and row["task_state"] == task_state)

        await wait_for(reached, limit, f"{uuid_} to reach {vm_state}/{task_state}")
        return await self.instance(uuid_)

    async def wait_registered(self, nodes: int = 1) -> None:
        async def registered() -> bool:
            count = await self.db.fetchval("SELECT COUNT(*) FROM compute_nodes")
            return bool(count and count >= nodes and "agent1" in self.host_agents())

        await wait_for(registered, 20, "the agent to register")

    def host_agents(self) -> list[str]:
        from cloudd.conductor.service import ConductorService

        return list(self.host.get(ConductorService).agents)


async def start_controller(cfg: CloudConfig) -> ServiceHost:
    host = build_controller(cfg)
    await host.start()
    db = host.get(DatabaseService).db
    await ensure_flavors(db)
    # These tests measure the engine, not quotas: project p1 may use whatever the hosts hold.
    await quota.set_limits(db, "p1", {"instances": -1, "cores": -1, "ram": -1}, time.time())
    return host


async def start_cloud(cfg: CloudConfig, nodes: int = 1) -> Cloud:
    host = await start_controller(cfg)
    await enroll_agent(host, cfg)
    agent_host = build_agent(cfg)
    await agent_host.start()
    cloud = Cloud(host, cfg, ComputeAPI(host), agent_host)
    await cloud.wait_registered(nodes)
    return cloud


@pytest.fixture
async def cloud(db_url: str, tmp_path: Path) -> AsyncIterator[Cloud]:
    c = await start_cloud(make_config(db_url, tmp_path))
    try:
        yield c
    finally:
        await c.stop()
