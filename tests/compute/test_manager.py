"""The compute manager with the fake driver, driven through its RPC handlers, against an in-memory
conductor double (instance rows in a dict, Nova's expected-state rule enforced as the real
conductor does, every report kept for assertions)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, cast

import pytest
from harness.fake_conductor import FakeConductor

from cloudd.agent.compute.drivers.base import DriverError, InvalidState
from cloudd.agent.compute.drivers.fake import FakeDriver
from cloudd.agent.compute.manager import ComputeManager
from cloudd.rpc import RpcContext, RpcPeer
from cloudd.rpc.contracts.compute import (
    BuildInstance,
    ConsoleOutputRequest,
    ImageInfo,
    InstanceAction,
    RebootInstance,
    ResizeInstance,
    SnapshotInstance,
)
from cloudd.rpc.contracts.conductor import (
    InstanceNotFoundError,
)
from cloudd.vocab import power_state, states

FLAVOR_TINY = {"id": 1, "flavorid": "1", "name": "m1.tiny", "vcpus": 1, "memory_mb": 512,
               "root_gb": 1, "ephemeral_gb": 0, "swap": 0}
FLAVOR_SMALL = {"id": 2, "flavorid": "2", "name": "m1.small", "vcpus": 2, "memory_mb": 2048,
                "root_gb": 20, "ephemeral_gb": 0, "swap": 0}


def ctx(method: str = "compute.test") -> RpcContext:
    """Handlers do not look at the peer; the manager is called directly, as the dispatcher would."""
    return RpcContext(method, None, cast(RpcPeer, None), None)


def instance_row(
    instance_id: int, host: str = "host1", vm_state: str = states.BUILDING,
    task_state: str | None = states.SCHEDULING, power: int = 0,
) -> dict[str, Any]:
    return {
        "id": instance_id, "uuid": f"00000000-0000-0000-0000-{instance_id:012d}",
        "name": f"server-{instance_id}", "hostname": f"server-{instance_id}",
        "project_id": "p1", "user_id": "u1", "image_ref": "img-1",
        "flavor": dict(FLAVOR_TINY), "instance_type_id": 1,
        "vcpus": 1, "memory_mb": 512, "root_gb": 1, "ephemeral_gb": 0,
        "vm_state": vm_state, "task_state": task_state, "power_state": power,
        "host": host, "node": host, "metadata": {}, "system_metadata": {},
        "user_data": None, "key_data": None, "created_at": time.time(), "launched_at": None,
    }


async def wait_until(condition: Callable[[], bool], seconds: float = 3.0) -> None:
    async with asyncio.timeout(seconds):
        while not condition():  # noqa: ASYNC110 - the condition is on a fake, no event to wait on
            await asyncio.sleep(0.01)


# ----- fixtures ---------------------------------------------------------------------------


@pytest.fixture
def conductor() -> FakeConductor:
    return FakeConductor()


@pytest.fixture
def driver() -> FakeDriver:
    return FakeDriver()


@pytest.fixture
async def manager(
    driver: FakeDriver, conductor: FakeConductor, tmp_path: Path
) -> AsyncIterator[ComputeManager]:
    compute = ComputeManager("host1", driver, conductor, tmp_path)
    await compute.init_host()
    yield compute
    await compute.cleanup_host()


async def build(manager: ComputeManager, conductor: FakeConductor, instance_id: int = 42,
                node: str = "host1") -> str:
    row = conductor.add(instance_row(instance_id))
    await manager.build_instance(ctx(), BuildInstance(
        instance=row, node=node, image=ImageInfo(id="img-1"), request_id="req-build"))
    return str(row["uuid"])


def action(uuid: str, request_id: str = "req-1") -> InstanceAction:
    return InstanceAction(uuid=uuid, request_id=request_id)


# ----- build ------------------------------------------------------------------------------


async def test_build_makes_an_active_running_guest_and_records_events(
    manager: ComputeManager, conductor: FakeConductor, driver: FakeDriver
) -> None:
    uuid = await build(manager, conductor)

    row = conductor.row(uuid)
    assert (row["vm_state"], row["task_state"]) == (states.ACTIVE, None)
    assert row["power_state"] == power_state.RUNNING
    assert row["launched_at"] is not None
    assert await driver.list_instances() == [uuid]
    assert conductor.events_of(uuid) == [
        ("compute_build_instance", "start", None), ("compute_build_instance", "finish", "Success")]
    assert conductor.events[0].request_id == "req-build"


async def test_guest_is_labelled_with_novas_instance_name(
    manager: ComputeManager, conductor: FakeConductor, driver: FakeDriver
) -> None:
    row = conductor.add({**instance_row(42), "hostname": ""})
    await manager.build_instance(ctx(), BuildInstance(instance=row, node="host1", request_id="r"))
    # With no hostname the guest announces its hypervisor label: Nova's "instance-%08x" of id.
    assert "instance-0000002a login:" in await driver.get_console_output(row["uuid"])


async def test_failed_spawn_is_handed_back_for_rescheduling_not_set_to_error(
    conductor: FakeConductor, tmp_path: Path
) -> None:
    row = instance_row(7)
    driver = FakeDriver(fail={"spawn": {row["uuid"]}})
    manager = ComputeManager("host1", driver, conductor, tmp_path)
    await manager.init_host()
    conductor.add(row)

    await manager.build_instance(ctx(), BuildInstance(instance=row, node="host1", request_id="r"))

    [report] = conductor.build_failures
    assert (report.uuid, report.host, report.node) == (row["uuid"], "host1", "host1")
    assert "injected spawn failure" in report.reason
    assert conductor.row(row["uuid"])["vm_state"] == states.BUILDING  # the controller decides
    assert await driver.list_instances() == []
    finish = conductor.events[-1]
    assert (finish.phase, finish.result) == ("finish", "Error")
    assert finish.traceback and "BuildFailed" in finish.traceback


async def test_delete_during_spawn_stops_the_build_quietly(
    conductor: FakeConductor, tmp_path: Path
) -> None:
    driver = FakeDriver(delays={"spawn": 0.2})
    manager = ComputeManager("host1", driver, conductor, tmp_path)
    await manager.init_host()
    row = conductor.add(instance_row(8))
    building = asyncio.create_task(manager.build_instance(
        ctx(), BuildInstance(instance=row, node="host1", request_id="r")))
    await wait_until(lambda: conductor.row(row["uuid"])["task_state"] == states.SPAWNING)

    conductor.set_state(row["uuid"], task_state=states.DELETING)
    await manager.terminate_instance(ctx(), action(row["uuid"]))
    await building

    assert row["uuid"] not in conductor.instances
    assert await driver.list_instances() == []
    assert conductor.build_failures == [] and conductor.faults == []


async def test_row_deleted_while_spawning_takes_the_new_guest_with_it(
    conductor: FakeConductor, tmp_path: Path
) -> None:
    driver = FakeDriver(delays={"spawn": 0.2})
    manager = ComputeManager("host1", driver, conductor, tmp_path)
    await manager.init_host()
    row = conductor.add(instance_row(9))
    building = asyncio.create_task(manager.build_instance(
        ctx(), BuildInstance(instance=row, node="host1", request_id="r")))
    await wait_until(lambda: conductor.row(row["uuid"])["task_state"] == states.SPAWNING)
    del conductor.instances[row["uuid"]]  # e.g. a local delete in the API

    await building

    assert await driver.list_instances() == []
    assert conductor.build_failures == []


# ----- power actions ----------------------------------------------------------------------


@pytest.mark.parametrize(("method", "task_state", "vm_state", "power"), [
    ("stop_instance", states.POWERING_OFF, states.STOPPED, power_state.SHUTDOWN),
    ("pause_instance", states.PAUSING, states.PAUSED, power_state.PAUSED),
    ("suspend_instance", states.SUSPENDING, states.SUSPENDED, power_state.SUSPENDED),
])
async def test_action_and_its_inverse_move_the_instance_there_and_back(
    manager: ComputeManager, conductor: FakeConductor,
    method: str, task_state: str, vm_state: str, power: int,
) -> None:
    uuid = await build(manager, conductor)
    inverse = {"stop_instance": ("start_instance", states.POWERING_ON),
               "pause_instance": ("unpause_instance", states.UNPAUSING),
               "suspend_instance": ("resume_instance", states.RESUMING)}[method]

    conductor.set_state(uuid, task_state=task_state)
    await getattr(manager, method)(ctx(), action(uuid))
    row = conductor.row(uuid)
    assert (row["vm_state"], row["task_state"], row["power_state"]) == (vm_state, None, power)

    conductor.set_state(uuid, task_state=inverse[1])
    await getattr(manager, inverse[0])(ctx(), action(uuid))
    row = conductor.row(uuid)
    assert (row["vm_state"], row["task_state"], row["power_state"]) == (
        states.ACTIVE, None, power_state.RUNNING)
    assert ("compute_" + method, "finish", "Success") in conductor.events_of(uuid)


async def test_hard_reboot_brings_a_stopped_guest_back(
    manager: ComputeManager, conductor: FakeConductor, driver: FakeDriver
) -> None:
    uuid = await build(manager, conductor)
    await driver.power_off(uuid)
    conductor.set_state(uuid, task_state=states.REBOOTING_HARD)

    await manager.reboot_instance(ctx(), RebootInstance(uuid=uuid, request_id="r", hard=True))

    row = conductor.row(uuid)
    assert (row["vm_state"], row["task_state"], row["power_state"]) == (
        states.ACTIVE, None, power_state.RUNNING)


async def test_cast_for_a_task_the_instance_no_longer_has_changes_nothing(
    manager: ComputeManager, conductor: FakeConductor, driver: FakeDriver
) -> None:
    uuid = await build(manager, conductor)
    conductor.set_state(uuid, task_state=states.DELETING)

    await manager.stop_instance(ctx(), action(uuid))

    assert (await driver.get_info(uuid)).power_state == power_state.RUNNING
    assert conductor.row(uuid)["task_state"] == states.DELETING
    assert conductor.faults == []


async def test_failed_action_records_a_fault_and_restores_the_vm_state(
    conductor: FakeConductor, tmp_path: Path
) -> None:
    row = instance_row(11)
    driver = FakeDriver(fail={"pause": {row["uuid"]}})
    manager = ComputeManager("host1", driver, conductor, tmp_path)
    await manager.init_host()
    await manager.build_instance(ctx(), BuildInstance(
        instance=conductor.add(row), node="host1", request_id="r"))
    conductor.set_state(row["uuid"], task_state=states.PAUSING)

    with pytest.raises(DriverError):
        await manager.pause_instance(ctx(), action(row["uuid"], "req-pause"))

    current = conductor.row(row["uuid"])
    assert (current["vm_state"], current["task_state"]) == (states.ACTIVE, None)
    [fault] = conductor.faults
    assert "injected pause failure" in fault.message and fault.host == "host1"
    finish = conductor.events[-1]
    assert (finish.request_id, finish.event, finish.result) == (
        "req-pause", "compute_pause_instance", "Error")


async def test_failure_leaving_the_guest_in_an_unexplained_state_is_error(
    manager: ComputeManager, conductor: FakeConductor, driver: FakeDriver
) -> None:
    uuid = await build(manager, conductor)
    # The row says paused but the guest runs: unpausing it is refused by the hypervisor.
    conductor.set_state(uuid, vm_state=states.PAUSED, task_state=states.UNPAUSING)

    with pytest.raises(InvalidState):
        await manager.unpause_instance(ctx(), action(uuid))

    row = conductor.row(uuid)
    assert (row["vm_state"], row["task_state"]) == (states.ERROR, None)
    assert len(conductor.faults) == 1


# ----- delete -----------------------------------------------------------------------------


@pytest.mark.parametrize("vm_state", [
    states.ACTIVE, states.STOPPED, states.ERROR, states.BUILDING, states.RESIZED])
async def test_delete_works_from_any_state_and_twice(
    manager: ComputeManager, conductor: FakeConductor, driver: FakeDriver, vm_state: str
) -> None:
    uuid = await build(manager, conductor)
    conductor.set_state(uuid, vm_state=vm_state, task_state=states.DELETING)

    await manager.terminate_instance(ctx(), action(uuid))
    await manager.terminate_instance(ctx(), action(uuid))

    assert uuid not in conductor.instances
    assert conductor.destroyed == [uuid]
    assert await driver.list_instances() == []
    assert conductor.faults == []


# ----- resize -----------------------------------------------------------------------------


async def resize(manager: ComputeManager, conductor: FakeConductor, uuid: str) -> None:
    conductor.set_state(uuid, task_state=states.RESIZE_PREP)
    await manager.resize_instance(ctx(), ResizeInstance(
        uuid=uuid, request_id="r", new_flavor=FLAVOR_SMALL))


async def test_resize_then_confirm_runs_the_new_flavor(
    manager: ComputeManager, conductor: FakeConductor, driver: FakeDriver
) -> None:
    uuid = await build(manager, conductor)
    await resize(manager, conductor, uuid)

    row = conductor.row(uuid)
    assert (row["vm_state"], row["task_state"]) == (states.RESIZED, None)
    assert (row["vcpus"], row["memory_mb"], row["root_gb"]) == (2, 2048, 20)
    assert row["flavor"]["name"] == "m1.small"
    assert row["system_metadata"]["old_flavor"]["name"] == "m1.tiny"
    assert (await driver.get_info(uuid)).vcpus == 2

    await manager.confirm_resize(ctx(), action(uuid))

    row = conductor.row(uuid)
    assert (row["vm_state"], row["task_state"], row["vcpus"]) == (states.ACTIVE, None, 2)
    assert "old_flavor" not in row["system_metadata"]
    assert (await driver.get_info(uuid)).power_state == power_state.RUNNING


async def test_resize_then_revert_goes_back_to_the_old_flavor(
    manager: ComputeManager, conductor: FakeConductor, driver: FakeDriver
) -> None:
    uuid = await build(manager, conductor)
    await resize(manager, conductor, uuid)
    conductor.set_state(uuid, task_state=states.RESIZE_REVERTING)

    await manager.revert_resize(ctx(), action(uuid))

    row = conductor.row(uuid)
    assert (row["vm_state"], row["task_state"]) == (states.ACTIVE, None)
    assert (row["vcpus"], row["memory_mb"], row["flavor"]["name"]) == (1, 512, "m1.tiny")
    assert row["system_metadata"] == {}
    assert (await driver.get_info(uuid)).vcpus == 1


async def test_resize_of_a_stopped_instance_stays_stopped(
    manager: ComputeManager, conductor: FakeConductor, driver: FakeDriver
) -> None:
    uuid = await build(manager, conductor)
    conductor.set_state(uuid, task_state=states.POWERING_OFF)
    await manager.stop_instance(ctx(), action(uuid))
    await resize(manager, conductor, uuid)
    assert (await driver.get_info(uuid)).power_state == power_state.SHUTDOWN

    await manager.confirm_resize(ctx(), action(uuid))

    assert conductor.row(uuid)["vm_state"] == states.STOPPED


# ----- snapshot and consoles --------------------------------------------------------------


async def test_snapshot_writes_the_image_file_and_clears_the_task(
    manager: ComputeManager, conductor: FakeConductor, tmp_path: Path
) -> None:
    uuid = await build(manager, conductor)
    conductor.set_state(uuid, task_state=states.IMAGE_SNAPSHOT)

    await manager.snapshot_instance(ctx(), SnapshotInstance(uuid=uuid, image_id="snap-1"))

    snapshot = (tmp_path / "snapshots" / "snap-1").read_bytes()
    assert f"instance={uuid}".encode() in snapshot
    assert conductor.row(uuid)["task_state"] is None


async def test_console_output_gives_the_last_lines(
    manager: ComputeManager, conductor: FakeConductor
) -> None:
    uuid = await build(manager, conductor)
    whole = await manager.get_console_output(ctx(), ConsoleOutputRequest(uuid=uuid))
    last = await manager.get_console_output(ctx(), ConsoleOutputRequest(uuid=uuid, length=1))

    assert len(whole.output.splitlines()) == 2
    assert last.output == "server-42 login:\n"


async def test_console_of_an_unknown_guest_is_instance_not_found(manager: ComputeManager) -> None:
    with pytest.raises(InstanceNotFoundError):
        await manager.get_vnc_console(ctx(), action("no-such-guest"))


# ----- power-state sync -------------------------------------------------------------------


@pytest.mark.parametrize("guest_does", ["power_off_behind_back", "crash"])
async def test_guest_that_stops_by_itself_is_marked_stopped(
    manager: ComputeManager, conductor: FakeConductor, driver: FakeDriver, guest_does: str
) -> None:
    uuid = await build(manager, conductor)

    getattr(driver, guest_does)(uuid)  # reported through the lifecycle event callback

    await wait_until(lambda: conductor.row(uuid)["vm_state"] == states.STOPPED)
    row = conductor.row(uuid)
    assert (row["task_state"], row["power_state"]) == (None, power_state.SHUTDOWN)


async def test_periodic_sync_forces_down_a_stopped_instance_started_outside(
    manager: ComputeManager, conductor: FakeConductor, driver: FakeDriver
) -> None:
    uuid = await build(manager, conductor)
    conductor.set_state(uuid, task_state=states.POWERING_OFF)
    await manager.stop_instance(ctx(), action(uuid))
    await driver.set_event_callback(lambda event: None)  # only the periodic task notices
    driver.power_on_behind_back(uuid)

    await manager.sync_power_states()

    row = conductor.row(uuid)
    assert (row["vm_state"], row["power_state"]) == (states.STOPPED, power_state.SHUTDOWN)
    assert (await driver.get_info(uuid)).power_state == power_state.SHUTDOWN


async def test_resources_are_reported_for_every_simulated_node(
    conductor: FakeConductor, tmp_path: Path
) -> None:
    manager = ComputeManager("rack1", FakeDriver(host_count=3), conductor, tmp_path)
    await manager.init_host()

    await manager.update_available_resource()

    assert [(host, node.hypervisor_hostname) for host, node in conductor.node_updates] == [
        ("rack1", "rack1-0"), ("rack1", "rack1-1"), ("rack1", "rack1-2")]


# ----- init_host reconciliation -----------------------------------------------------------


async def restart(driver: FakeDriver, conductor: FakeConductor, tmp_path: Path) -> ComputeManager:
    """The agent process stops and starts again; the hypervisor keeps its guests."""
    manager = ComputeManager("host1", driver, conductor, tmp_path)
    await manager.init_host()
    return manager


async def test_restart_reconciles_what_each_instance_was_doing(
    manager: ComputeManager, conductor: FakeConductor, driver: FakeDriver, tmp_path: Path
) -> None:
    uuids = [await build(manager, conductor, instance_id=n) for n in range(1, 7)]
    interrupted_build, deleting, powering_off, powering_on, rebooting, untouched = uuids
    conductor.set_state(interrupted_build, vm_state=states.BUILDING, task_state=states.SPAWNING)
    conductor.set_state(deleting, task_state=states.DELETING)
    conductor.set_state(powering_off, task_state=states.POWERING_OFF)
    await driver.power_off(powering_on)
    conductor.set_state(powering_on, vm_state=states.STOPPED, task_state=states.POWERING_ON)
    await driver.power_off(rebooting)  # a soft reboot that got as far as shutting down
    conductor.set_state(rebooting, task_state=states.REBOOTING)
    await manager.cleanup_host()

    await restart(driver, conductor, tmp_path)

    def state(uuid: str) -> tuple[str, str | None]:
        return conductor.row(uuid)["vm_state"], conductor.row(uuid)["task_state"]

    assert state(interrupted_build) == (states.ERROR, None)
    assert "interrupted" in conductor.faults[0].message
    assert deleting not in conductor.instances
    assert state(powering_off) == (states.STOPPED, None)
    assert state(powering_on) == (states.ACTIVE, None)
    assert state(rebooting) == (states.ACTIVE, None)
    assert state(untouched) == (states.ACTIVE, None)
    assert sorted(await driver.list_instances()) == sorted(
        [powering_off, powering_on, rebooting, untouched])
    assert (await driver.get_info(rebooting)).power_state == power_state.RUNNING


async def test_restart_destroys_guests_the_database_does_not_know(
    manager: ComputeManager, conductor: FakeConductor, driver: FakeDriver, tmp_path: Path
) -> None:
    kept = await build(manager, conductor, instance_id=1)
    orphan = await build(manager, conductor, instance_id=2)
    del conductor.instances[orphan]
    await manager.cleanup_host()

    await restart(driver, conductor, tmp_path)

    assert await driver.list_instances() == [kept]


async def test_actions_wait_for_the_reconciliation_to_finish(
    driver: FakeDriver, conductor: FakeConductor, tmp_path: Path
) -> None:
    manager = ComputeManager("host1", driver, conductor, tmp_path)
    row = conductor.add(instance_row(5))
    building = asyncio.create_task(manager.build_instance(
        ctx(), BuildInstance(instance=row, node="host1", request_id="r")))
    await asyncio.sleep(0.05)
    assert not building.done()  # not taken for an interrupted build either

    await manager.init_host()
    await building

    assert conductor.row(row["uuid"])["vm_state"] == states.ACTIVE
