"""An agent's report sent again with its idempotency key (its reply was lost with the link) is
applied once: the retry answers as the first did, and changes nothing the row did since. A
report the conductor refused leaves its key unspent. On SQLite and on PostgreSQL."""

from __future__ import annotations

from harness.cloud import Cloud
from harness.rows import Row

from cloudd.compute import instances
from cloudd.rpc.contracts.conductor import (
    PREFIX,
    AgentInstanceValues,
    FaultCreate,
    InstanceRecord,
    InstanceUpdate,
    ReportKey,
    UnexpectedTaskState,
)
from cloudd.rpc.peer import RpcPeer
from cloudd.vocab import power_state, states


async def active_instance(cloud: Cloud) -> Row:
    (row,), _ = await cloud.boot("reported")
    return await cloud.wait_state(row["uuid"], states.ACTIVE)


def agent_link(cloud: Cloud) -> RpcPeer:
    peer = cloud.agent.conductor.peer
    assert peer is not None
    return peer


async def update(cloud: Cloud, uuid: str, power: int, key: ReportKey | None,
                 expected: list[str | None] | None = None) -> int:
    request = InstanceUpdate(uuid=uuid, values=AgentInstanceValues(power_state=power),
                             expected_task_state=expected or [None], key=key)
    record = await agent_link(cloud).call(PREFIX + "instance_update", request, InstanceRecord)
    return record.instance.power_state


async def test_an_update_sent_again_is_applied_once(cloud: Cloud) -> None:
    uuid = (await active_instance(cloud))["uuid"]
    first = ReportKey(operation="op-1", sequence=0)
    assert await update(cloud, uuid, power_state.SHUTDOWN, first) == power_state.SHUTDOWN
    # The row moves on (a later report of the same host), then the first one comes again.
    later = ReportKey(operation="op-2", sequence=0)
    assert await update(cloud, uuid, power_state.RUNNING, later) == power_state.RUNNING
    assert await update(cloud, uuid, power_state.SHUTDOWN, first) == power_state.RUNNING
    assert (await cloud.instance(uuid))["power_state"] == power_state.RUNNING
    assert await instances.report_applied(cloud.db, first.scoped("agent1"))


async def test_a_refused_update_leaves_its_key_unspent(cloud: Cloud) -> None:
    uuid = (await active_instance(cloud))["uuid"]
    key = ReportKey(operation="op-refused", sequence=3)
    try:
        await update(cloud, uuid, power_state.SHUTDOWN, key, [states.POWERING_OFF])
    except UnexpectedTaskState:
        pass
    else:
        raise AssertionError("an update in the wrong task_state was applied")
    assert not await instances.report_applied(cloud.db, key.scoped("agent1"))
    assert await update(cloud, uuid, power_state.SHUTDOWN, key) == power_state.SHUTDOWN


async def test_a_fault_sent_again_is_recorded_once(cloud: Cloud) -> None:
    uuid = (await active_instance(cloud))["uuid"]
    fault = FaultCreate(uuid=uuid, message="disk on fire", host="agent1",
                        key=ReportKey(operation="op-fault", sequence=1))
    for _ in range(3):
        await agent_link(cloud).call(PREFIX + "fault_create", fault)
    unkeyed = fault.model_copy(update={"key": None})  # an older agent's: no key, no guard
    await agent_link(cloud).call(PREFIX + "fault_create", unkeyed)
    assert await cloud.db.fetchval(
        "SELECT COUNT(*) FROM instance_faults WHERE instance_uuid = $1", uuid) == 2


async def test_old_keys_are_forgotten(cloud: Cloud) -> None:
    await instances.claim_report(cloud.db, "agent1/old/0", "agent1", 1.0)
    await instances.claim_report(cloud.db, "agent1/new/0", "agent1", 2e9)
    assert await instances.prune_reports(cloud.db, 1e9) == 1
    assert not await instances.report_applied(cloud.db, "agent1/old/0")
    assert await instances.report_applied(cloud.db, "agent1/new/0")
