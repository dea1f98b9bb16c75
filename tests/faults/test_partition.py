"""A network partition between the controller and an agent host, with real `cloudd serve` and
`cloudd agent` processes, the agent in its own network namespace (harness.partition): iptables
drops their traffic both ways, or one way, without resetting the connection.

While cut: the agent's websocket pings go unanswered and it drops the link; the controller
marks the host down once its heartbeats are ``service_down_time`` late. A stop asked for then
is accepted (the controller still holds what it takes for a live link) or refused (409). When
the partition heals the agent reconnects by itself, the host is up again, and every operation is
applied exactly once: the stop ends SHUTOFF without a fault, the other servers stay ACTIVE, the
fake driver's guests are the database's.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from harness.cloud import wait_for
from harness.config import free_port
from harness.partition import Direction, PartitionLab, require_root_and_tools
from harness.processes import AGENT_HOST, LINK_HEARTBEAT, Processes, prepare_database

from cloudd.db import Database, connect

pytestmark = pytest.mark.slow
SERVICE_DOWN_TIME = 5.0  # harness.processes' [service] service_down_time
DOWN_MARGIN = 3.0  # the status is read every 0.3s; heartbeats go every 0.5s
SERVERS = 3
RECONNECT_LIMIT = 45.0  # after the heal (measured: see the report printed by each case)


@pytest.fixture
async def partitioned(tmp_path: Path) -> AsyncIterator[tuple[Processes, PartitionLab]]:
    """The controller on the lab bridge's address, the agent in the lab's namespace."""
    require_root_and_tools()
    lab = PartitionLab()
    async with aiohttp.ClientSession() as session:
        try:
            lab.create()
            procs = Processes(tmp_path, f"sqlite://{tmp_path}/cloudd.db", free_port(), free_port(),
                              session, rpc_address=lab.controller_address,
                              agent_command_prefix=lab.in_namespace)
            procs.join_token = await prepare_database(procs.db_url, procs.config, tmp_path)
            try:
                yield procs, lab
            finally:
                procs.stop_all()
                procs.kill(procs.agent)
                procs.kill(procs.controller)
        finally:
            lab.destroy()


async def servers(procs: Processes) -> dict[str, dict[str, Any]]:
    status, body = await procs.call("GET", "/compute/v2.1/servers/detail")
    assert status == 200, body
    return {server["id"]: server for server in body["servers"]}


async def compute_state(procs: Processes) -> str:
    """The os-services state ("up"/"down") of the agent host's compute service."""
    status, body = await procs.call("GET", "/compute/v2.1/os-services")
    assert status == 200, body
    states = [s["state"] for s in body["services"] if s["host"] == AGENT_HOST]
    assert len(states) == 1, body
    return str(states[0])


async def manage_status(procs: Processes) -> tuple[int, str]:
    out = await asyncio.to_thread(subprocess.run, [
        sys.executable, "-m", "cloudd", "--config", str(procs.controller_conf), "manage", "status"],
        capture_output=True, text=True, timeout=60)
    return out.returncode, out.stdout + out.stderr


async def guests_on_host(procs: Processes) -> int:
    """The fake driver's guest count, asked of the agent (GET /healthz/hosts)."""
    status, body = await procs.call("GET", "/healthz/hosts")
    assert status == 200, body
    [report] = [h for h in body["hosts"] if h["host"] == AGENT_HOST]
    return int(report["guests"])


def registrations(procs: Processes) -> int:
    return (procs.tmp / "agent.log").read_text(errors="replace").count(f"registered {AGENT_HOST}")


def _registered_again(procs: Processes) -> bool:
    return registrations(procs) >= 2


async def boot_active(procs: Processes, count: int) -> list[str]:
    uuids = []
    for number in range(count):
        status, body = await procs.boot(f"part{number}")
        assert status == 202, body
        uuids.append(str(body["server"]["id"]))

    async def all_active() -> bool:
        found = await servers(procs)
        assert all(found[u]["status"] != "ERROR" for u in uuids), found
        return all(found[u]["status"] == "ACTIVE" and found[u]["OS-EXT-STS:task_state"] is None
                   for u in uuids)

    await wait_for(all_active, 30, "the servers to be ACTIVE")
    return uuids


@pytest.mark.parametrize("direction", ["both", "to_agent", "from_agent"])
async def test_partition_marks_the_host_down_and_heals_without_double_work(
        partitioned: tuple[Processes, PartitionLab], direction: Direction) -> None:
    procs, lab = partitioned
    await procs.start_cloud()
    uuids = await boot_active(procs, SERVERS)
    victim = uuids[0]
    assert registrations(procs) == 1

    cut_at = time.monotonic()
    lab.cut(direction)
    await wait_for(lambda: _is(compute_state(procs), "down"), SERVICE_DOWN_TIME + DOWN_MARGIN,
                   "the host to be marked down")
    assert time.monotonic() - cut_at <= SERVICE_DOWN_TIME + DOWN_MARGIN
    # The agent's dead-peer detection: its pings go unanswered, it drops the link. Cut one way
    # (from_agent), the controller's own pings still reach the agent and restart its silence
    # timer once: up to two heartbeats and a pong's wait, then a margin.
    await wait_for(lambda: asyncio.to_thread(_agent_log_has, procs, "lost the link"),
                   2.5 * LINK_HEARTBEAT + 3, "the agent to notice the dead link")
    code, out = await manage_status(procs)
    assert code == 1, out
    assert f"FAIL cloudd-compute on {AGENT_HOST}: down" in out, out
    assert "OK   controller" in out, out  # the controller itself is fine

    # A stop while cut off: queued into the dead link (202) or refused at once (409).
    status, body = await procs.call("POST", f"/compute/v2.1/servers/{victim}/action",
                                    json={"os-stop": None})
    assert status in (202, 409), body
    stops = 1 if status == 202 else 0

    healed_at = time.monotonic()
    lab.heal()
    # Not the controller's word alone: it may still hold the dead link (and a heartbeat the
    # agent sent just before the cut may arrive now, late): the agent registers again.
    await wait_for(lambda: asyncio.to_thread(_registered_again, procs), RECONNECT_LIMIT,
                   "the agent to reconnect and register again")
    print(f"{direction}: the agent registered again {time.monotonic() - healed_at:.1f}s after"
          " the partition healed")
    await wait_for(procs.agent_connected, 10, "the controller to hold the new link")
    await wait_for(lambda: _is(compute_state(procs), "up"), 10, "the host to be up again")
    if not stops:  # refused while cut off: asked again now the host is back
        status, body = await procs.call("POST", f"/compute/v2.1/servers/{victim}/action",
                                        json={"os-stop": None})
        assert status == 202, body
        stops = 1

    await wait_for(lambda: _settled(procs, victim, uuids), 20, "the stop to end, the rest ACTIVE")
    await _assert_applied_once(procs, victim, uuids, stops)
    assert registrations(procs) == 2, "the agent reconnected once, not in a loop"
    code, out = await manage_status(procs)
    assert code == 0, out
    assert f"OK   cloudd-compute on {AGENT_HOST}: up" in out, out
    assert f"OK   host {AGENT_HOST}: fake driver, {SERVERS} guest(s)" in out, out


async def _settled(procs: Processes, victim: str, uuids: list[str]) -> bool:
    found = await servers(procs)
    assert all(found[u]["status"] != "ERROR" for u in uuids), found
    wanted = {u: "SHUTOFF" if u == victim else "ACTIVE" for u in uuids}
    return all(found[u]["status"] == wanted[u] and found[u]["OS-EXT-STS:task_state"] is None
               for u in uuids)


async def _assert_applied_once(procs: Processes, victim: str, uuids: list[str],
                               stops: int) -> None:
    found = await servers(procs)
    assert set(found) == set(uuids), "no server lost or added"
    # The driver's own view (synced into power_state): off for the victim, running for the rest.
    assert found[victim]["OS-EXT-STS:power_state"] in (0, 4)  # NOSTATE / SHUTDOWN
    assert all(found[u]["OS-EXT-STS:power_state"] == 1 for u in uuids if u != victim), found
    status, body = await procs.call("GET", f"/compute/v2.1/servers/{victim}/os-instance-actions")
    assert status == 200, body
    assert [a["action"] for a in body["instanceActions"]].count("stop") == stops, body
    assert await guests_on_host(procs) == len(uuids)
    db = await connect(procs.db_url)
    try:
        await _assert_usage_counted_once(db, len(uuids))
        faults = await db.fetch("SELECT instance_uuid, message FROM instance_faults")
        assert not faults, f"a fault after the partition (an operation applied twice?): {faults}"
    finally:
        await db.close()


async def _assert_usage_counted_once(db: Database, total: int) -> None:
    """One row per server, and the node's usage the sum of its servers' (none counted twice)."""
    rows = await db.fetch("SELECT name, vcpus, memory_mb FROM instances WHERE deleted = 0")
    assert len(rows) == total and len({row["name"] for row in rows}) == total, rows
    node = await db.fetchrow("SELECT vcpus_used, memory_mb_used, reserved_host_memory_mb"
                             " FROM compute_nodes WHERE host = $1", AGENT_HOST)
    assert node is not None
    assert node["vcpus_used"] == sum(row["vcpus"] for row in rows), node
    assert node["memory_mb_used"] == (node["reserved_host_memory_mb"] or 0) + sum(
        row["memory_mb"] for row in rows), node


async def _is(value: Any, wanted: str) -> bool:
    return bool(await value == wanted)


def _agent_log_has(procs: Processes, text: str) -> bool:
    return text in (procs.tmp / "agent.log").read_text(errors="replace")
