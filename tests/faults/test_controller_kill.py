"""kill -9 of `cloudd serve` while 100 servers build, then a restart: nothing stuck, lost,
duplicated or leaked (claims and guests match the database)."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest
from harness.cloud import wait_for
from harness.processes import AGENT_HOST, Processes, assert_consistent

from cloudd.conductor.service import ConductorService
from cloudd.controller import build_controller
from cloudd.db import connect
from cloudd.db.service import DatabaseService
from cloudd.rpc.contracts.compute import PREFIX as COMPUTE
from cloudd.rpc.contracts.compute import GuestList, HostQuery

SERVERS = 100
SPAWNING_AT_KILL = 5



@pytest.mark.slow
async def test_controller_killed_during_100_boots(processes: Processes) -> None:
    procs = processes
    await procs.start_cloud("spawn=0.3")

    answers = await asyncio.gather(*(procs.boot(f"vm-{i:03d}") for i in range(SERVERS)))
    assert [status for status, _ in answers] == [202] * SERVERS, answers[:3]
    accepted = {body["server"]["id"] for _, body in answers}

    db = await connect(procs.db_url)
    try:
        async def spawning() -> bool:  # about half way, with builds on the agent
            counts = dict(Counter(row["task_state"] or row["vm_state"] for row in await db.fetch(
                "SELECT vm_state, task_state FROM instances")))
            return bool(counts.get("spawning", 0) >= SPAWNING_AT_KILL
                        and counts.get("active", 0) >= SERVERS // 3)

        await wait_for(spawning, 30, "builds to reach the agent", interval=0.01)
        procs.kill(procs.controller)  # with builds on the agent, casts and schedules on their way
        at_kill = Counter(
            (row["task_state"] or row["vm_state"], row["host"] is not None)
            for row in await db.fetch("SELECT vm_state, task_state, host FROM instances"))
    finally:
        await db.close()
    assert at_kill[("spawning", True)] >= SPAWNING_AT_KILL, at_kill

    # The restarted controller runs in this process, so the test can ask the agent too.
    controller = build_controller(procs.config)
    await controller.start()
    try:
        db = controller.get(DatabaseService).db

        async def settled() -> bool:
            return not await db.fetchval(
                "SELECT COUNT(*) FROM instances WHERE deleted = 0"
                " AND (vm_state = 'building' OR task_state IS NOT NULL)")

        print("at the kill:", dict(at_kill))
        await wait_for(settled, 30, f"every build to settle (at the kill: {dict(at_kill)})")
        rows = await assert_consistent(db, total=SERVERS)
        assert {row["uuid"] for row in rows} == accepted
        peer = await controller.get(ConductorService).peer_for(AGENT_HOST, wait=10)
        guests = await peer.call(COMPUTE + "list_guests", HostQuery(), GuestList)
        active = {row["uuid"] for row in rows if row["vm_state"] == "active"}
        assert set(guests.uuids) == active  # no guest the database does not know, none missing
        # It still works: a new server builds.
        status, body = await procs.boot("after-restart")
        assert status == 202, body

        async def built() -> bool:
            vm_state = await db.fetchval("SELECT vm_state FROM instances WHERE uuid = $1",
                                         body["server"]["id"])
            return bool(vm_state == "active")

        await wait_for(built, 20, "a server booted after the restart")
    finally:
        await controller.stop()
