"""The path every server takes: compute API -> scheduler -> agent over the websocket -> fake driver
-> state back through the conductor. Runs on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from harness.cloud import Cloud, start_cloud, start_controller, wait_for
from harness.config import enroll_agent, make_config

from cloudd.agent.compute.drivers.fake import FakeDriver
from cloudd.frontdoor.compute import ComputeAPI
from cloudd.image import records as images
from cloudd.image.for_compute import create_snapshot_image
from cloudd.vocab import power_state, states


async def events_of(cloud: Cloud, uuid: str, request_id: str) -> list[tuple[str, str | None]]:
    rows = await cloud.db.fetch(
        "SELECT e.event, e.result FROM instance_action_events e JOIN instance_actions a"
        " ON a.id = e.action_id WHERE a.instance_uuid = $1 AND a.request_id = $2 ORDER BY e.id",
        uuid, request_id,
    )
    return [(r["event"], r["result"]) for r in rows]


async def finished_events(cloud: Cloud, uuid: str, request_id: str) -> list[tuple[str, str | None]]:
    """The request's events once each has its result: the agent reports the instance's state
    first and finishes the action's event after it."""
    events = await events_of(cloud, uuid, request_id)
    for _ in range(100):
        if events and all(result is not None for _, result in events):
            break
        await asyncio.sleep(0.1)
        events = await events_of(cloud, uuid, request_id)
    return events


async def test_build_to_active_and_every_action(cloud: Cloud) -> None:
    (row,), create_req = await cloud.boot("web")
    assert row["vm_state"] == states.BUILDING and row["task_state"] == states.SCHEDULING
    active = await cloud.wait_state(row["uuid"], states.ACTIVE)
    assert active["host"] == "agent1" and active["node"] == "agent1"
    assert active["power_state"] == power_state.RUNNING and active["launched_at"]
    assert await finished_events(cloud, row["uuid"], create_req) == [
        ("compute_build_instance", "Success")]

    # (action, extra, vm_state afterwards, power_state afterwards)
    steps = [
        ("reboot", {"hard": False}, states.ACTIVE, power_state.RUNNING),
        ("reboot", {"hard": True}, states.ACTIVE, power_state.RUNNING),
        ("stop", {}, states.STOPPED, power_state.SHUTDOWN),
        ("start", {}, states.ACTIVE, power_state.RUNNING),
        ("pause", {}, states.PAUSED, power_state.PAUSED),
        ("unpause", {}, states.ACTIVE, power_state.RUNNING),
        ("suspend", {}, states.SUSPENDED, power_state.SUSPENDED),
        ("resume", {}, states.ACTIVE, power_state.RUNNING),
    ]
    for index, (action, extra, vm_state, power) in enumerate(steps):
        current = await cloud.instance(row["uuid"])
        request_id = f"req-step-{index}"
        await cloud.api.action(current, action, request_id, **extra)
        done = await cloud.wait_state(row["uuid"], vm_state)
        assert done["power_state"] == power, action
        events = await finished_events(cloud, row["uuid"], request_id)
        assert events and all(result == "Success" for _, result in events), (action, events)

    # Resize to a bigger flavor, then confirm; then resize again and revert.
    small = await cloud.instance(row["uuid"])
    big = await cloud.flavor("m1.small")
    await cloud.api.action(small, "resize", "req-resize", new_flavor=dict(big))
    resized = await cloud.wait_state(row["uuid"], states.RESIZED)
    assert resized["memory_mb"] == big["memory_mb"]
    await cloud.api.action(resized, "confirmResize", "req-confirm")
    confirmed = await cloud.wait_state(row["uuid"], states.ACTIVE)
    assert confirmed["memory_mb"] == big["memory_mb"]
    medium = await cloud.flavor("m1.medium")
    await cloud.api.action(confirmed, "resize", "req-resize2", new_flavor=dict(medium))
    resized2 = await cloud.wait_state(row["uuid"], states.RESIZED)
    await cloud.api.action(resized2, "revertResize", "req-revert")
    reverted = await cloud.wait_state(row["uuid"], states.ACTIVE)
    assert reverted["memory_mb"] == big["memory_mb"]

    output = await cloud.api.console_output(reverted, length=None)
    assert output
    vnc = await cloud.api.vnc_console(reverted)
    assert vnc.port > 0

    await cloud.api.action(reverted, "rebuild", "req-rebuild")
    rebuilt = await cloud.wait_state(row["uuid"], states.ACTIVE)
    assert [e for e, _ in await events_of(cloud, row["uuid"], "req-rebuild")] == [
        "compute_rebuild_instance"]
    image = await create_snapshot_image(cloud.db, rebuilt, name="snap", metadata={},
                                        user_id="u1", user_name="u1", project_name="p1")
    await cloud.api.action(rebuilt, "createImage", "req-snap", image_id=image.id)
    reverted = await cloud.wait_state(row["uuid"], states.ACTIVE)

    async def uploaded() -> bool:
        return bool((await images.get(cloud.db, image.id)).status == "active")

    await wait_for(uploaded, 20, "the snapshot to be uploaded")
    assert ((await images.get(cloud.db, image.id)).size or 0) > 0
    # A state the action may not start from is refused, not queued.
    with pytest.raises(states.InvalidInstanceState):
        await cloud.api.action(reverted, "start", "req-bad")

    actions = await cloud.db.fetch(
        "SELECT action FROM instance_actions WHERE instance_uuid = $1 ORDER BY id", row["uuid"])
    assert [a["action"] for a in actions][:3] == ["create", "reboot", "reboot"]

    await cloud.api.delete(reverted, "req-delete")
    gone = await cloud.wait_state(row["uuid"], states.DELETED)
    assert gone["deleted"] == 1
    assert row["uuid"] not in await cloud.agent.driver.list_instances()
    # Delete is idempotent.
    await cloud.api.delete(gone, "req-delete-again")


async def test_delete_works_from_error_and_releases_resources(cloud: Cloud) -> None:
    (row,), _ = await cloud.boot("x")
    await cloud.wait_state(row["uuid"], states.ACTIVE)
    used = await cloud.db.fetchval("SELECT vcpus_used FROM compute_nodes")
    assert used == 1
    await cloud.db.execute("UPDATE instances SET vm_state = 'error' WHERE uuid = $1", row["uuid"])
    await cloud.api.delete(await cloud.instance(row["uuid"]), "req-del")
    await cloud.wait_state(row["uuid"], states.DELETED)
    assert await cloud.db.fetchval("SELECT vcpus_used FROM compute_nodes") == 0


async def test_concurrent_builds_never_oversubscribe(db_url: str, tmp_path: Path) -> None:
    cfg = make_config(db_url, tmp_path, fake_host_count=3, fake_vcpus=4, fake_memory_mb=4096,
                      fake_local_gb=100)
    cfg.scheduler.cpu_allocation_ratio = 1.0
    cfg.scheduler.ram_allocation_ratio = 1.0
    cloud = await start_cloud(cfg, nodes=3)
    try:
        # m1.tiny is 512 MB / 1 vCPU: 4 fit per node by vCPU, 12 in all.
        batches = await asyncio.gather(*(cloud.boot(f"vm{i}") for i in range(100)))
        uuids = [rows[0]["uuid"] for rows, _ in batches]

        async def settled() -> bool:
            n = await cloud.db.fetchval(
                "SELECT COUNT(*) FROM instances WHERE vm_state IN ('active', 'error')")
            return bool(n == 100)

        await wait_for(settled, 60, "100 builds to settle")
        active = await cloud.db.fetch(
            "SELECT node FROM instances WHERE vm_state = 'active'")
        assert len(active) == 12
        for node in await cloud.db.fetch("SELECT * FROM compute_nodes"):
            assert node["vcpus_used"] <= node["vcpus"]
            on_node = [a for a in active if a["node"] == node["hypervisor_hostname"]]
            assert len(on_node) == node["vcpus_used"] == 4
        errored = [u for u in uuids if (await cloud.instance(u))["vm_state"] == states.ERROR]
        fault = await cloud.db.fetchrow(
            "SELECT * FROM instance_faults WHERE instance_uuid = $1", errored[0])
        assert fault is not None and "No valid host" in fault["message"]
        assert "CoreFilter" in fault["details"]
    finally:
        await cloud.stop()


async def test_failed_build_is_rescheduled_then_errors(db_url: str, tmp_path: Path) -> None:
    cfg = make_config(db_url, tmp_path, fake_host_count=3)
    cloud = await start_cloud(cfg, nodes=3)
    try:
        driver = cloud.agent.driver
        assert isinstance(driver, FakeDriver)
        # Fail on the two nodes the weighers prefer... whichever they are: fail on two nodes.
        driver.fail["spawn"] = {"agent1-0", "agent1-1"}
        (row,), _ = await cloud.boot("retry-me")
        active = await cloud.wait_state(row["uuid"], states.ACTIVE)
        assert active["node"] == "agent1-2"

        driver.fail["spawn"] = {"agent1-0", "agent1-1", "agent1-2"}
        (row2,), _ = await cloud.boot("doomed")
        failed = await cloud.wait_state(row2["uuid"], states.ERROR)
        assert failed["host"] is None
        fault = await cloud.fault(row2["uuid"])
        assert "Exceeded maximum number of retries" in fault.message + fault.details
        # Every failed attempt gave its claim back: only the one ACTIVE server uses resources.
        used = await cloud.db.fetchval("SELECT SUM(vcpus_used) FROM compute_nodes")
        assert used == 1
    finally:
        await cloud.stop()


async def test_controller_restart_loses_nothing(db_url: str, tmp_path: Path) -> None:
    cfg = make_config(db_url, tmp_path)
    cloud = await start_cloud(cfg)
    rows, _ = await cloud.boot("keep", count=3)
    for row in rows:
        await cloud.wait_state(row["uuid"], states.ACTIVE)
    await cloud.api.action(await cloud.instance(rows[0]["uuid"]), "stop", "req-stop")
    await cloud.wait_state(rows[0]["uuid"], states.STOPPED)
    before = await cloud.db.fetch("SELECT uuid, vm_state FROM instances ORDER BY uuid")
    actions_before = await cloud.db.fetchval("SELECT COUNT(*) FROM instance_actions")
    await cloud.host.stop()  # the controller only: the agent and its guests live on

    cloud.host = await start_controller(cfg)
    cloud.api = ComputeAPI(cloud.host)
    try:
        await cloud.wait_registered()  # the agent reconnected by itself
        after = await cloud.db.fetch("SELECT uuid, vm_state FROM instances ORDER BY uuid")
        assert after == before
        assert await cloud.db.fetchval("SELECT COUNT(*) FROM instance_actions") == actions_before
        # The restarted controller still drives the servers.
        await cloud.api.action(await cloud.instance(rows[0]["uuid"]), "start", "req-start")
        await cloud.wait_state(rows[0]["uuid"], states.ACTIVE)
    finally:
        await cloud.stop()


async def test_agent_killed_mid_build(db_url: str, tmp_path: Path) -> None:
    """kill -9 of an agent while it builds: its service goes down; on restart the interrupted
    build is ERROR with a fault and nothing of it is left running."""
    cfg = make_config(db_url, tmp_path)
    host = await start_controller(cfg)
    api = ComputeAPI(host)
    agent_conf = tmp_path / "agent.conf"
    token = await enroll_agent(host, cfg.model_copy(deep=True))  # used at its first start

    def run_agent(delays: str) -> subprocess.Popen[bytes]:
        agent_conf.write_text(
            f"[DEFAULT]\nhost = agent1\nstate_dir = {tmp_path / 'agent-state'}\n"
            f"[service]\nreport_interval = 0.5\n"
            f"[rpc]\nenroll_port = {cfg.rpc.enroll_port}\n[cert]\njoin_token = {token}\n"
            f"[agent]\ncontroller_url = {cfg.agent.controller_url}\nreconnect_max_backoff = 1\n"
            f"[compute]\ncompute_driver = fake\nfake_delays = {delays}\n"
        )
        return subprocess.Popen([sys.executable, "-m", "cloudd", "--config", str(agent_conf), "agent"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    agent = run_agent("spawn=120")
    cloud = Cloud(host, cfg, api, host)  # the agent lives in its own process here
    try:
        await cloud.wait_registered()
        (row,), _ = await cloud.boot("interrupted")
        await cloud.wait_state(row["uuid"], states.BUILDING, states.SPAWNING)
        agent.send_signal(signal.SIGKILL)
        agent.wait(10)

        down_time = cfg.service.service_down_time

        async def service_down() -> bool:
            seen = await cloud.db.fetchval(
                "SELECT last_seen_up FROM services WHERE host = 'agent1'")
            return bool(time.time() - seen > down_time)

        await wait_for(service_down, down_time + 10, "the agent's service to be down")
        assert cloud.host_agents() == []

        agent = run_agent("")
        failed = await cloud.wait_state(row["uuid"], states.ERROR, None, limit=30)
        assert failed["power_state"] == power_state.NOSTATE


        async def fault_recorded() -> bool:  # the agent records it right after the ERROR
            return await cloud.db.fetchrow(
                "SELECT * FROM instance_faults WHERE instance_uuid = $1", row["uuid"]) is not None

        await wait_for(fault_recorded, 10, "the interrupted build's fault")
        # The restarted agent serves again: a new build on it succeeds.
        (row2,), _ = await cloud.boot("after")
        await cloud.wait_state(row2["uuid"], states.ACTIVE)
    finally:
        agent.kill()
        agent.wait(10)
        await host.stop()
