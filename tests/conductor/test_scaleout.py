"""Two controllers on one PostgreSQL serve one cloud (scale-out)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from harness.cloud import Cloud, RowsComputeAPI, start_controller, wait_for
from harness.config import enroll_agent, free_port, make_config

from cloudd.agent.service import build_agent
from cloudd.conductor.service import ConductorService
from cloudd.config import CloudConfig
from cloudd.db.service import DatabaseService
from cloudd.vocab import states


def second_controller(cfg: CloudConfig) -> CloudConfig:
    other = cfg.model_copy(deep=True)
    other.rpc.port = free_port()
    other.rpc.enroll_port = free_port()
    other.agent.controller_url = f"wss://127.0.0.1:{other.rpc.port}/agent"
    return other


# Scale-out needs PostgreSQL (SQLite serves one controller): only that backend of `db_url`.
@pytest.mark.parametrize("db_url", [pytest.param("postgresql", marks=pytest.mark.postgres)],
                         indirect=True)
async def test_two_controllers_one_cloud(db_url: str, tmp_path: Path) -> None:
    pg_url = db_url
    cfg_a = make_config(pg_url, tmp_path, fake_host_count=2, fake_vcpus=4)
    cfg_a.scheduler.cpu_allocation_ratio = 1.0
    cfg_b = second_controller(cfg_a)
    ctl_a = await start_controller(cfg_a)
    ctl_b = await start_controller(cfg_b)
    # The agent knows both controllers; it connects to A first.
    agent_cfg = cfg_a.model_copy(deep=True)
    agent_cfg.agent.controller_url = f"{cfg_a.agent.controller_url},{cfg_b.agent.controller_url}"
    await enroll_agent(ctl_a, agent_cfg)  # one hosts CA (the CA directory) for both controllers
    agent_host = build_agent(agent_cfg)
    await agent_host.start()
    cloud_a = Cloud(ctl_a, cfg_a, RowsComputeAPI(ctl_a), agent_host)
    cloud_b = Cloud(ctl_b, cfg_b, RowsComputeAPI(ctl_b), agent_host)
    try:
        await cloud_a.wait_registered(nodes=2)
        assert cloud_b.host_agents() == []

        # A request arriving at B reaches the agent connected to A: cast (build) and call.
        (row,), _ = await cloud_b.boot("via-b")
        active = await cloud_b.wait_state(row["uuid"], states.ACTIVE)
        assert await cloud_b.api.console_output(active, length=None)
        await cloud_b.api.action(active, "stop", "req-stop-b")
        await cloud_b.wait_state(row["uuid"], states.STOPPED)

        # Concurrent boots through both controllers never double-book: 8 vCPUs, 1 taken.
        boots = [(cloud_a if i % 2 else cloud_b).boot(f"race{i}") for i in range(16)]
        uuids = [rows[0]["uuid"] for rows, _ in await asyncio.gather(*boots)]

        async def settled() -> bool:
            n = await cloud_a.db.fetchval(
                "SELECT COUNT(*) FROM instances WHERE name LIKE 'race%' AND vm_state IN"
                " ('active', 'error')")
            return bool(n == len(uuids))

        await wait_for(settled, 60, "racing builds to settle")
        active_count = await cloud_a.db.fetchval(
            "SELECT COUNT(*) FROM instances WHERE name LIKE 'race%' AND vm_state = 'active'")
        assert active_count == 7
        for node in await cloud_a.db.fetch("SELECT vcpus, vcpus_used FROM compute_nodes"):
            assert node["vcpus_used"] <= node["vcpus"]

        # A's death moves its agent to B, and B drives the servers on its own.
        await ctl_a.stop()

        async def moved() -> bool:
            return "agent1" in cloud_b.host_agents()

        await wait_for(moved, 30, "the agent to move to controller B")
        await cloud_b.api.action(await cloud_b.instance(row["uuid"]), "start", "req-start-b")
        await cloud_b.wait_state(row["uuid"], states.ACTIVE)
    finally:
        await agent_host.stop()
        await ctl_b.stop()
        if ctl_a.services["database"].state != "stopped":
            await ctl_a.stop()


@pytest.mark.parametrize("db_url", [pytest.param("postgresql", marks=pytest.mark.postgres)],
                         indirect=True)
async def test_a_killed_controller_holds_no_links(db_url: str, tmp_path: Path) -> None:
    """A controller killed -9 leaves its agent_links rows behind (no goodbye); its PostgreSQL
    session ends with it, so the others stop relaying to it at once: a cast relayed to a dead
    controller would be lost (a build stuck in scheduling until the link's TTL)."""
    cfg_a = make_config(db_url, tmp_path)
    ctl_a = await start_controller(cfg_a)
    ctl_b = await start_controller(second_controller(cfg_a))
    await enroll_agent(ctl_a, cfg_a)
    agent_host = build_agent(cfg_a)
    await agent_host.start()
    cluster_a = ctl_a.get(ConductorService).cluster
    cluster_b = ctl_b.get(ConductorService).cluster
    assert cluster_a is not None and cluster_b is not None
    try:
        await Cloud(ctl_a, cfg_a, RowsComputeAPI(ctl_a), agent_host).wait_registered()
        assert await cluster_b.owner("agent1") == cluster_a.controller_id
        # A's death as PostgreSQL sees it: its listening session closes, its rows stay (the
        # agent is still on A's listener here; a real death would close that too).
        assert cluster_a._conn is not None
        await cluster_a._conn.close()
        assert await ctl_b.get(DatabaseService).db.fetchval(
            "SELECT controller_id FROM agent_links WHERE host = 'agent1'") == cluster_a.controller_id

        async def let_go() -> bool:  # the session's end is seen at once, or nearly
            return await cluster_b.owner("agent1") is None

        await wait_for(let_go, 5, "controller B to see that A is gone")
    finally:
        await agent_host.stop()
        await ctl_b.stop()
        cluster_a._conn = None  # closed above
        await ctl_a.stop()
