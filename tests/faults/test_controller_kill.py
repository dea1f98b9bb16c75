"""kill -9 of `cloudd serve` while 100 servers build, then a restart: nothing is stuck, lost,
duplicated or leaked (claims and guests match the database); a build the agent finished while the
controller was down is reported over the next link and ends ACTIVE."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest
from harness.cloud import wait_for
from harness.processes import AGENT_HOST, Processes, assert_consistent, assert_endings

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
        await assert_endings(db, accepted, active=SERVERS)  # none lost to the fault itself
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


SPAWN_SECONDS = 3.0
LATE_BUILDS = 3


@pytest.mark.slow
async def test_a_build_finished_while_the_controller_is_down_ends_active(
        processes: Processes) -> None:
    """The controller is killed while the agent spawns, and the spawns end before it is back:
    the agent keeps their final reports and sends them over the next link, so the servers end
    ACTIVE with their guests (not ERROR with the guests destroyed as interrupted builds)."""
    procs = processes
    await procs.start_cloud(f"spawn={SPAWN_SECONDS}")
    answers = await asyncio.gather(*(procs.boot(f"late-{i}") for i in range(LATE_BUILDS)))
    assert [status for status, _ in answers] == [202] * LATE_BUILDS, answers
    accepted = {body["server"]["id"] for _, body in answers}

    db = await connect(procs.db_url)
    try:
        async def all_spawning() -> bool:
            rows = await db.fetch("SELECT task_state FROM instances")
            return [row["task_state"] for row in rows] == ["spawning"] * LATE_BUILDS

        await wait_for(all_spawning, 20, "the builds to reach the agent", interval=0.01)
    finally:
        await db.close()
    procs.kill(procs.controller)

    await asyncio.sleep(SPAWN_SECONDS + 1)  # the spawns end on the agent meanwhile

    controller = build_controller(procs.config)
    await controller.start()
    try:
        db = controller.get(DatabaseService).db

        async def settled() -> bool:
            return not await db.fetchval(
                "SELECT COUNT(*) FROM instances WHERE deleted = 0"
                " AND (vm_state = 'building' OR task_state IS NOT NULL)")

        await wait_for(settled, 30, "the held reports to arrive")
        await assert_consistent(db, total=LATE_BUILDS)
        await assert_endings(db, accepted, active=LATE_BUILDS)
        peer = await controller.get(ConductorService).peer_for(AGENT_HOST, wait=10)
        guests = await peer.call(COMPUTE + "list_guests", HostQuery(), GuestList)
        assert set(guests.uuids) == accepted
        # Each report was applied once: one successful build event per server, no fault. The
        # agent reports a build's state before it finishes the build's event, so the rows may
        # settle a moment before the last event's finish arrives: wait for it, then count.
        async def build_successes() -> int:
            return int(await db.fetchval(
                "SELECT COUNT(*) FROM instance_action_events"
                " WHERE event = 'compute_build_instance' AND result = 'Success'"))

        async def all_finished() -> bool:
            return await build_successes() >= LATE_BUILDS

        await wait_for(all_finished, 10, "every build's event to finish")
        await asyncio.sleep(0.5)  # a report applied twice would add a row by now
        assert await build_successes() == LATE_BUILDS
        assert not await db.fetchval("SELECT COUNT(*) FROM instance_faults")
        assert held_while_down(procs) >= accepted, "the builds did not end while it was down"
    finally:
        await controller.stop()


def held_while_down(procs: Processes) -> set[str]:
    """The servers whose final update the agent logged as queued until the controller came
    back (their first update, to spawning, was applied before the kill)."""
    log = (procs.tmp / "agent.log").read_text(errors="replace")
    held = [line for line in log.splitlines() if "queued until the controller is back" in line]
    return {line.split("instance_update of ")[1].split()[0] for line in held
            if "instance_update of " in line}
