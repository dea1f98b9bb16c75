"""A node's usage stays the sum of the servers on it when a heal (an agent registering again
after a controller restart) lands between an instance leaving its node and the release of its
claim. Found by tests/faults/test_controller_kill.py: one vCPU short after 100 builds."""

from __future__ import annotations

import asyncio

import pytest
from harness.cloud import Cloud
from harness.rows import Row

from cloudd.conductor.manager import mark_deleted
from cloudd.scheduler.request import FlavorSpec
from cloudd.scheduler.service import SchedulerService
from cloudd.vocab import states


async def usage(cloud: Cloud) -> tuple[int, int]:
    """(vCPUs the node counts, vCPUs of the servers placed on it)."""
    counted = await cloud.db.fetchval("SELECT vcpus_used FROM compute_nodes")
    placed = await cloud.db.fetchval(
        "SELECT COALESCE(SUM(vcpus), 0) FROM instances WHERE deleted = 0 AND node IS NOT NULL")
    return int(counted), int(placed)


@pytest.fixture
def heals(cloud: Cloud, monkeypatch: pytest.MonkeyPatch) -> list[asyncio.Task[None]]:
    """Every release first lets a heal of the agent's host start and run as far as it can
    (the test awaits the heals before it reads the usage)."""
    scheduler = cloud.host.get(SchedulerService)
    original = SchedulerService.release
    started: list[asyncio.Task[None]] = []

    async def release(self: SchedulerService, node: str, flavor: FlavorSpec) -> None:
        started.append(asyncio.create_task(scheduler.heal("agent1")))
        await asyncio.sleep(0.2)
        await original(self, node, flavor)

    monkeypatch.setattr(SchedulerService, "release", release)
    return started


async def settled_usage(cloud: Cloud, heals: list[asyncio.Task[None]]) -> tuple[int, int]:
    assert heals, "no release happened"
    await asyncio.gather(*heals)
    return await usage(cloud)


async def test_heal_during_a_delete_counts_the_server_out_once(
        cloud: Cloud, heals: list[asyncio.Task[None]]) -> None:
    rows: list[Row] = []
    for name in ("keep", "gone"):
        (row,), _ = await cloud.boot(name)
        rows.append(await cloud.wait_state(row["uuid"], states.ACTIVE))
    assert await usage(cloud) == (2, 2)
    assert await mark_deleted(cloud.host, rows[1]["uuid"])
    assert await settled_usage(cloud, heals) == (1, 1)
    assert not await mark_deleted(cloud.host, rows[1]["uuid"])  # once
    assert await usage(cloud) == (1, 1)


async def test_heal_during_a_failed_build_counts_the_claim_out_once(
        cloud: Cloud, heals: list[asyncio.Task[None]]) -> None:
    driver = cloud.agent.driver
    (kept,), _ = await cloud.boot("keep")
    await cloud.wait_state(kept["uuid"], states.ACTIVE)
    driver.fail["spawn"] = {"agent1"}  # type: ignore[attr-defined]
    (doomed,), _ = await cloud.boot("doomed")
    await cloud.wait_state(doomed["uuid"], states.ERROR)
    assert await settled_usage(cloud, heals) == (1, 1)
