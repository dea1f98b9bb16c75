"""A build's cast to its host meets a link that drops: the conductor waits for the host to come
back and casts again, so the server ends ACTIVE there once (it is not handed back as a failed
build, which with one host ends ERROR 'No valid host'). A host that stays away past the wait
still fails the build there (with one host: ERROR 'No valid host', RetryFilter)."""

from __future__ import annotations

from typing import Any

import pytest
from harness.cloud import Cloud, wait_for

from cloudd.compute import instances
from cloudd.conductor import build
from cloudd.conductor.service import ConductorService, HostUnavailable
from cloudd.rpc.contracts.compute import BuildInstance, ComputeClient
from cloudd.vocab import states


async def build_events(cloud: Cloud, uuid: str) -> list[Any]:
    return [row["result"] for row in await cloud.db.fetch(
        "SELECT e.result FROM instance_action_events e JOIN instance_actions a"
        " ON a.id = e.action_id WHERE a.instance_uuid = $1 AND e.event = 'compute_build_instance'"
        " ORDER BY e.id", uuid)]


async def test_a_link_lost_during_the_cast_is_waited_for(
        cloud: Cloud, monkeypatch: pytest.MonkeyPatch) -> None:
    original = ComputeClient.build_instance
    dropped: list[str] = []

    async def drop_the_link_first(self: ComputeClient, args: BuildInstance) -> None:
        if not dropped:  # the link goes down as the first cast is sent
            dropped.append(args.instance.uuid)
            await cloud.host.get(ConductorService).agents["agent1"].close()
        await original(self, args)

    monkeypatch.setattr(ComputeClient, "build_instance", drop_the_link_first)
    (row,), _ = await cloud.boot("cast-again")
    active = await cloud.wait_state(row["uuid"], states.ACTIVE)
    assert dropped == [row["uuid"]]
    assert active["host"] == "agent1"

    async def finished() -> bool:  # the agent reports the state before it ends the event
        events = await build_events(cloud, row["uuid"])
        return bool(events) and None not in events

    await wait_for(finished, 10, "the build's event to finish")
    assert await build_events(cloud, row["uuid"]) == ["Success"]  # built once
    assert not await cloud.db.fetchval(
        "SELECT COUNT(*) FROM instance_faults WHERE instance_uuid = $1", row["uuid"])
    used = await cloud.db.fetchval("SELECT SUM(vcpus_used) FROM compute_nodes")
    assert used == active["vcpus"]  # one claim, kept


async def test_a_host_that_stays_away_fails_the_build(
        cloud: Cloud, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(build, "AGENT_WAIT", 1.0)
    await cloud.agent_host.stop()  # its last heartbeat is recent: the scheduler still picks it
    (row,), _ = await cloud.boot("nowhere")
    failed = await cloud.wait_state(row["uuid"], states.ERROR)
    assert failed["host"] is None
    fault = await cloud.fault(row["uuid"])
    # Handed back as failed on agent1, then no other host: Nova's NoValidHost, naming the
    # filter that left agent1 out.
    assert fault.message == "No valid host was found.", fault
    assert "RetryFilter 1->0" in fault.details, fault
    assert not await cloud.db.fetchval("SELECT SUM(vcpus_used) FROM compute_nodes")


async def test_an_action_refused_for_a_host_away_is_not_recorded(cloud: Cloud) -> None:
    """A stop whose host cannot be reached is refused (409: HostUnavailable) and leaves no
    trace: the task state is back to none and os-instance-actions does not list it."""
    (row,), _ = await cloud.boot("away")
    await cloud.wait_state(row["uuid"], states.ACTIVE)
    await cloud.agent_host.stop()
    instance = await instances.get(cloud.db, row["uuid"])
    with pytest.raises(HostUnavailable):
        await cloud.api.action(instance, "stop", "req-refused")
    after = await cloud.instance(row["uuid"])
    assert (after["vm_state"], after["task_state"]) == (states.ACTIVE, None)
    assert [a.action for a in await instances.actions_of(cloud.db, row["uuid"])] == ["create"]
