"""A running cloud in this process: the controller's services and one enrolled agent (fake
driver) on its own service host, talking over a real websocket on loopback, on SQLite and on
PostgreSQL; servers are built through ComputeAPI, as the REST layer would."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from cloudd.agent.service import AgentService, build_agent
from cloudd.compute import flavors, quota
from cloudd.compute.instances import Instance, InstanceFault, decode_json, latest_faults
from cloudd.compute.instances import get as get_instance
from cloudd.config import CloudConfig
from cloudd.controller import build_controller
from cloudd.core import ServiceHost
from cloudd.db import Database
from cloudd.db.service import DatabaseService
from cloudd.frontdoor.compute import BuildRequest, ComputeAPI, ServerCreateRequest

from .config import enroll_agent, make_config
from .rows import Row, as_row


class RowsComputeAPI(ComputeAPI):
    """ComputeAPI whose create answers `Row`s, which the tests also index by column."""

    async def create(self, req: ServerCreateRequest | BuildRequest,
                     request_id: str) -> list[Instance]:
        return [as_row(i) for i in await super().create(req, request_id)]


async def wait_for(predicate: Callable[[], Awaitable[bool]], limit: float = 20.0,
                   what: str = "condition", interval: float = 0.05) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if await predicate():
            return
        await asyncio.sleep(interval)
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
        """The flavors row, its extra_specs decoded (a resize's new_flavor may be made of it)."""
        row = await self.db.fetchrow("SELECT * FROM flavors WHERE name = $1", name)
        assert row is not None
        return {**row, "extra_specs": decode_json(row["extra_specs"])}

    async def boot(self, name: str = "vm", flavor: str = "m1.tiny", count: int = 1,
                   **kw: Any) -> tuple[list[Row], str]:
        request_id = f"req-{uuid.uuid4()}"
        req = BuildRequest(name=name, flavor=await self.flavor(flavor), project_id="p1",
                           user_id="u1", image_ref=str(uuid.uuid4()), min_count=count,
                           max_count=count, **kw)
        return [as_row(i) for i in await self.api.create(req, request_id)], request_id

    async def instance(self, uuid_: str) -> Row:
        return as_row(await get_instance(self.db, uuid_, include_deleted=True))

    async def wait_state(self, uuid_: str, vm_state: str, task_state: Any = None,
                         limit: float = 20.0) -> Row:
        async def reached() -> bool:
            row = await self.instance(uuid_)
            return bool(row["vm_state"] == vm_state and row["task_state"] == task_state)

        await wait_for(reached, limit, f"{uuid_} to reach {vm_state}/{task_state}")
        return await self.instance(uuid_)

    async def fault(self, uuid_: str) -> InstanceFault:
        """The server's latest fault (there must be one)."""
        faults = await latest_faults(self.db, [uuid_])
        assert uuid_ in faults, f"{uuid_} has no fault"
        return faults[uuid_]

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
    await flavors.ensure_defaults(db)
    # These tests measure the engine, not quotas: project p1 may use whatever the hosts hold.
    await quota.set_limits(db, "p1", {"instances": -1, "cores": -1, "ram": -1}, time.time())
    return host


async def start_cloud(cfg: CloudConfig, nodes: int = 1) -> Cloud:
    host = await start_controller(cfg)
    await enroll_agent(host, cfg)
    agent_host = build_agent(cfg)
    await agent_host.start()
    cloud = Cloud(host, cfg, RowsComputeAPI(host), agent_host)
    await cloud.wait_registered(nodes)
    return cloud


@pytest.fixture
async def cloud(db_url: str, tmp_path: Path) -> AsyncIterator[Cloud]:
    """The engine's cloud (make_config) on each database backend."""
    c = await start_cloud(make_config(db_url, tmp_path))
    try:
        yield c
    finally:
        await c.stop()
