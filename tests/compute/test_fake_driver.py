"""The fake hypervisor driver, through the ComputeDriver interface the compute manager uses."""

from __future__ import annotations

import asyncio
import importlib.abc
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from cloudd.agent.compute.drivers import (
    BuildFailed,
    DriverError,
    GuestSpec,
    InstanceNotFound,
    InvalidState,
    LifecycleEvent,
    load_driver,
)
from cloudd.agent.compute.drivers.fake import FakeDriver
from cloudd.rpc.contracts.compute import ImageInfo
from cloudd.vocab import power_state

HOST = "compute1"


def make_spec(uuid: str = "11111111-0000-0000-0000-000000000001", **overrides: object) -> GuestSpec:
    fields: dict[str, object] = {
        "uuid": uuid,
        "name": "instance-0000002a",
        "vcpus": 1,
        "memory_mb": 512,
        "root_gb": 1,
        "image": ImageInfo(id="cirros", disk_format="qcow2", container_format="bare"),
        "hostname": "vm1",
    }
    fields.update(overrides)
    return GuestSpec.model_validate(fields)


async def started_driver(**kwargs: object) -> FakeDriver:
    driver = FakeDriver(**kwargs)  # type: ignore[arg-type]
    await driver.init_host(HOST)
    return driver


async def driver_with_guest(**kwargs: object) -> tuple[FakeDriver, str]:
    driver = await started_driver(**kwargs)
    spec = make_spec()
    await driver.spawn(spec, HOST)
    return driver, spec.uuid


async def state_of(driver: FakeDriver, uuid: str) -> int:
    return (await driver.get_info(uuid)).power_state


# -- host and nodes ------------------------------------------------------------------------


async def test_single_node_is_named_after_the_host() -> None:
    driver = await started_driver()
    assert await driver.get_available_nodes() == [HOST]
    resources = await driver.get_available_resource(HOST)
    assert resources.hypervisor_hostname == HOST
    assert resources.hypervisor_type == "fake"
    assert (resources.vcpus, resources.memory_mb, resources.local_gb) == (16, 32768, 500)
    assert resources.supported_instances == [("x86_64", "fake", "hvm")]


async def test_many_nodes_each_report_their_own_resources() -> None:
    driver = await started_driver(host_count=3, vcpus=4, memory_mb=2048, local_gb=20)
    nodes = await driver.get_available_nodes()
    assert nodes == [f"{HOST}-0", f"{HOST}-1", f"{HOST}-2"]
    for node in nodes:
        resources = await driver.get_available_resource(node)
        assert resources.hypervisor_hostname == node
        assert (resources.vcpus, resources.memory_mb, resources.local_gb) == (4, 2048, 20)
    with pytest.raises(DriverError):
        await driver.get_available_resource(HOST)


async def test_guests_land_on_the_node_they_were_spawned_on() -> None:
    driver = await started_driver(host_count=2)
    await driver.spawn(make_spec("a"), f"{HOST}-1")
    with pytest.raises(BuildFailed):
        await driver.spawn(make_spec("b"), "elsewhere")
    assert await driver.list_instances() == ["a"]


async def test_nodes_need_init_host() -> None:
    driver = FakeDriver()
    with pytest.raises(DriverError):
        await driver.get_available_nodes()


async def test_guests_survive_an_agent_restart() -> None:
    driver, uuid = await driver_with_guest()
    await driver.cleanup_host()
    await driver.init_host(HOST)
    assert await driver.list_instances() == [uuid]
    assert await state_of(driver, uuid) == power_state.RUNNING


# -- spawn, info, destroy ------------------------------------------------------------------


async def test_spawn_runs_the_guest_and_boots_it_on_the_console() -> None:
    driver, uuid = await driver_with_guest()
    info = await driver.get_info(uuid)
    assert (info.power_state, info.vcpus, info.memory_mb) == (power_state.RUNNING, 1, 512)
    assert await driver.list_instances() == [uuid]
    assert await driver.instance_exists(uuid)
    console = await driver.get_console_output(uuid)
    assert f"fake guest {uuid} booted" in console
    assert "vm1 login:" in console


async def test_spawning_an_existing_uuid_is_refused() -> None:
    driver, uuid = await driver_with_guest()
    with pytest.raises(InvalidState):
        await driver.spawn(make_spec(uuid), HOST)


async def test_unknown_guest_raises_instance_not_found() -> None:
    driver = await started_driver()
    assert not await driver.instance_exists("nope")
    for call in (driver.get_info, driver.power_off, driver.get_console_output):
        with pytest.raises(InstanceNotFound):
            await call("nope")


async def test_destroy_removes_the_guest_and_is_idempotent() -> None:
    driver, uuid = await driver_with_guest()
    await driver.destroy(uuid)
    await driver.destroy(uuid)
    assert await driver.list_instances() == []
    assert not await driver.instance_exists(uuid)
    with pytest.raises(InstanceNotFound):
        await driver.get_vnc_console(uuid)


async def test_destroy_during_spawn_aborts_the_build() -> None:
    driver = await started_driver(delays={"spawn": 0.05})
    spawning = asyncio.create_task(driver.spawn(make_spec("x"), HOST))
    await asyncio.sleep(0.01)
    await driver.destroy("x")
    with pytest.raises(InstanceNotFound):
        await spawning
    assert await driver.list_instances() == []


# -- power-state transitions ---------------------------------------------------------------

Op = Callable[[FakeDriver, str], Awaitable[None]]
OPS: dict[str, Op] = {
    "soft_reboot": lambda d, u: d.reboot(u, hard=False),
    "hard_reboot": lambda d, u: d.reboot(u, hard=True),
    "power_off": lambda d, u: d.power_off(u),
    "power_on": lambda d, u: d.power_on(u),
    "pause": lambda d, u: d.pause(u),
    "unpause": lambda d, u: d.unpause(u),
    "suspend": lambda d, u: d.suspend(u),
    "resume": lambda d, u: d.resume(u),
}
# How to bring a freshly spawned (running) guest into each state.
REACH: dict[int, list[str]] = {
    power_state.RUNNING: [],
    power_state.PAUSED: ["pause"],
    power_state.SUSPENDED: ["suspend"],
    power_state.SHUTDOWN: ["power_off"],
}
VALID = [
    (power_state.RUNNING, "soft_reboot", power_state.RUNNING),
    (power_state.RUNNING, "hard_reboot", power_state.RUNNING),
    (power_state.SHUTDOWN, "hard_reboot", power_state.RUNNING),
    (power_state.PAUSED, "hard_reboot", power_state.RUNNING),
    (power_state.SUSPENDED, "hard_reboot", power_state.RUNNING),
    (power_state.RUNNING, "power_off", power_state.SHUTDOWN),
    (power_state.PAUSED, "power_off", power_state.SHUTDOWN),
    (power_state.SUSPENDED, "power_off", power_state.SHUTDOWN),
    (power_state.SHUTDOWN, "power_off", power_state.SHUTDOWN),
    (power_state.SHUTDOWN, "power_on", power_state.RUNNING),
    (power_state.RUNNING, "power_on", power_state.RUNNING),
    (power_state.RUNNING, "pause", power_state.PAUSED),
    (power_state.PAUSED, "unpause", power_state.RUNNING),
    (power_state.RUNNING, "suspend", power_state.SUSPENDED),
    (power_state.SUSPENDED, "resume", power_state.RUNNING),
]
INVALID = [
    (power_state.SHUTDOWN, "soft_reboot"),
    (power_state.PAUSED, "soft_reboot"),
    (power_state.PAUSED, "power_on"),
    (power_state.SUSPENDED, "power_on"),
    (power_state.SHUTDOWN, "pause"),
    (power_state.PAUSED, "pause"),
    (power_state.RUNNING, "unpause"),
    (power_state.SHUTDOWN, "unpause"),
    (power_state.PAUSED, "suspend"),
    (power_state.SHUTDOWN, "suspend"),
    (power_state.RUNNING, "resume"),
    (power_state.PAUSED, "resume"),
]


async def guest_in_state(start: int) -> tuple[FakeDriver, str]:
    driver, uuid = await driver_with_guest()
    for op in REACH[start]:
        await OPS[op](driver, uuid)
    assert await state_of(driver, uuid) == start
    return driver, uuid


@pytest.mark.parametrize(("start", "op", "end"), VALID)
async def test_valid_transition(start: int, op: str, end: int) -> None:
    driver, uuid = await guest_in_state(start)
    await OPS[op](driver, uuid)
    assert await state_of(driver, uuid) == end


@pytest.mark.parametrize(("start", "op"), INVALID)
async def test_invalid_transition_raises_and_leaves_state(start: int, op: str) -> None:
    driver, uuid = await guest_in_state(start)
    with pytest.raises(InvalidState):
        await OPS[op](driver, uuid)
    assert await state_of(driver, uuid) == start


async def test_crashed_guest_can_be_powered_on() -> None:
    driver, uuid = await driver_with_guest()
    driver.crash(uuid)
    await driver.power_on(uuid)
    assert await state_of(driver, uuid) == power_state.RUNNING


async def test_console_output_accumulates_across_boots() -> None:
    driver, uuid = await driver_with_guest()
    await driver.reboot(uuid, hard=False)
    await driver.power_off(uuid)
    await driver.power_on(uuid)
    console = await driver.get_console_output(uuid)
    assert console.count(f"fake guest {uuid} booted") == 3
    assert "powered off" in console


async def test_console_keeps_only_the_last_lines() -> None:
    driver, uuid = await driver_with_guest(console_lines=4)
    for _ in range(5):
        await driver.reboot(uuid, hard=True)
    assert len((await driver.get_console_output(uuid)).splitlines()) == 4


# -- rebuild and resize --------------------------------------------------------------------


async def test_rebuild_uses_the_new_image_and_boots() -> None:
    driver, uuid = await driver_with_guest()
    await driver.power_off(uuid)
    await driver.rebuild(make_spec(uuid, image=ImageInfo(id="fedora")))
    assert await state_of(driver, uuid) == power_state.RUNNING
    assert "rebuilt from image fedora" in await driver.get_console_output(uuid)


async def test_rebuild_of_a_paused_guest_is_refused() -> None:
    driver, uuid = await driver_with_guest()
    await driver.pause(uuid)
    with pytest.raises(InvalidState):
        await driver.rebuild(make_spec(uuid))


async def test_resize_then_confirm_keeps_the_new_size() -> None:
    driver, uuid = await driver_with_guest()
    await driver.resize(uuid, make_spec(uuid, vcpus=2, memory_mb=1024))
    info = await driver.get_info(uuid)
    assert (info.power_state, info.vcpus, info.memory_mb) == (power_state.RUNNING, 2, 1024)
    await driver.confirm_resize(uuid)
    info = await driver.get_info(uuid)
    assert (info.vcpus, info.memory_mb) == (2, 1024)
    with pytest.raises(InvalidState):
        await driver.revert_resize(uuid)


async def test_resize_then_revert_restores_the_old_size() -> None:
    driver, uuid = await driver_with_guest()
    await driver.resize(uuid, make_spec(uuid, vcpus=4, memory_mb=4096))
    await driver.revert_resize(uuid)
    info = await driver.get_info(uuid)
    assert (info.power_state, info.vcpus, info.memory_mb) == (power_state.RUNNING, 1, 512)
    with pytest.raises(InvalidState):
        await driver.confirm_resize(uuid)


async def test_resize_of_a_stopped_guest_can_stay_stopped() -> None:
    driver, uuid = await driver_with_guest()
    await driver.power_off(uuid)
    await driver.resize(uuid, make_spec(uuid, vcpus=2), power_on=False)
    assert await state_of(driver, uuid) == power_state.SHUTDOWN
    await driver.revert_resize(uuid, power_on=False)
    info = await driver.get_info(uuid)
    assert (info.power_state, info.vcpus) == (power_state.SHUTDOWN, 1)


async def test_second_resize_before_confirm_is_refused() -> None:
    driver, uuid = await driver_with_guest()
    await driver.resize(uuid, make_spec(uuid, vcpus=2))
    with pytest.raises(InvalidState):
        await driver.resize(uuid, make_spec(uuid, vcpus=8))
    with pytest.raises(InvalidState):
        await driver.rebuild(make_spec(uuid))
    with pytest.raises(DriverError):
        await driver.resize(uuid, make_spec("someone-else"))


# -- snapshot and consoles -----------------------------------------------------------------


async def test_snapshot_writes_an_image_file(tmp_path: Path) -> None:
    driver, uuid = await driver_with_guest()
    dest = tmp_path / "snap.img"
    await driver.snapshot(uuid, str(dest))
    data = dest.read_bytes()
    assert data.startswith(b"QFI\xfb")  # a qcow2 header, as the libvirt driver's snapshots
    content = data[512:].decode()
    assert f"instance={uuid}" in content
    assert "base_image=cirros" in content


async def test_snapshot_to_an_unwritable_place_is_a_driver_error(tmp_path: Path) -> None:
    driver, uuid = await driver_with_guest()
    with pytest.raises(DriverError):
        await driver.snapshot(uuid, str(tmp_path / "missing-dir" / "snap.img"))


async def test_vnc_console_per_guest_only_while_a_vm_runs() -> None:
    driver = await started_driver()
    await driver.spawn(make_spec("a"), HOST)
    await driver.spawn(make_spec("b"), HOST)
    vnc_a = await driver.get_vnc_console("a")
    vnc_b = await driver.get_vnc_console("b")
    assert vnc_a.host == "127.0.0.1"
    assert vnc_a.port != vnc_b.port
    await driver.power_off("a")
    with pytest.raises(InvalidState):
        await driver.get_vnc_console("a")


# -- lifecycle events ----------------------------------------------------------------------


async def test_guest_changes_of_its_own_are_reported() -> None:
    driver, uuid = await driver_with_guest()
    events: list[LifecycleEvent] = []
    await driver.set_event_callback(events.append)
    driver.power_off_behind_back(uuid)
    driver.power_on_behind_back(uuid)
    driver.crash(uuid)
    assert [event.power_state for event in events] == [
        power_state.SHUTDOWN,
        power_state.RUNNING,
        power_state.CRASHED,
    ]
    assert all(event.uuid == uuid and event.reason for event in events)
    assert await state_of(driver, uuid) == power_state.CRASHED


async def test_no_events_after_cleanup_host() -> None:
    driver, uuid = await driver_with_guest()
    events: list[LifecycleEvent] = []
    await driver.set_event_callback(events.append)
    await driver.cleanup_host()
    driver.crash(uuid)
    assert events == []
    with pytest.raises(InstanceNotFound):
        driver.crash("nope")


# -- failure injection and delays ----------------------------------------------------------


async def test_spawn_fails_on_chosen_nodes_and_leaves_nothing() -> None:
    driver = await started_driver(host_count=2, fail={"spawn": {f"{HOST}-0"}})
    with pytest.raises(BuildFailed):
        await driver.spawn(make_spec("a"), f"{HOST}-0")
    await driver.spawn(make_spec("a"), f"{HOST}-1")
    assert await driver.list_instances() == ["a"]


async def test_spawn_fails_for_chosen_uuids() -> None:
    driver = await started_driver(fail={"spawn": {"bad"}})
    with pytest.raises(BuildFailed):
        await driver.spawn(make_spec("bad"), HOST)
    await driver.spawn(make_spec("good"), HOST)
    assert await driver.list_instances() == ["good"]


async def test_spawn_failure_probability() -> None:
    always = await started_driver(fail={"spawn": 1.0})
    never = await started_driver(fail={"spawn": 0.0})
    sometimes = await started_driver(fail={"spawn": 0.5}, seed=7)
    with pytest.raises(BuildFailed):
        await always.spawn(make_spec("a"), HOST)
    await never.spawn(make_spec("a"), HOST)
    failures = 0
    for index in range(200):
        try:
            await sometimes.spawn(make_spec(f"g{index}"), HOST)
        except BuildFailed:
            failures += 1
    assert 60 < failures < 140
    assert len(await sometimes.list_instances()) == 200 - failures


async def test_other_operations_fail_without_changing_state() -> None:
    uuid = make_spec().uuid
    driver, _ = await driver_with_guest(fail={"power_off": 1.0, "destroy": {uuid}})
    with pytest.raises(DriverError) as raised:
        await driver.power_off(uuid)
    assert not isinstance(raised.value, InvalidState)
    assert await state_of(driver, uuid) == power_state.RUNNING
    with pytest.raises(DriverError):
        await driver.destroy(uuid)
    assert await driver.instance_exists(uuid)


async def test_unknown_operation_names_are_refused() -> None:
    with pytest.raises(DriverError):
        FakeDriver(delays={"spwan": 1.0})
    with pytest.raises(DriverError):
        FakeDriver(fail={"explode": 1.0})


async def test_delays_are_per_operation_and_do_not_serialise_guests() -> None:
    driver = await started_driver(delays={"spawn": 0.2})
    started = time.monotonic()
    await asyncio.gather(*(driver.spawn(make_spec(f"g{i}"), HOST) for i in range(50)))
    spawn_time = time.monotonic() - started
    assert 0.2 <= spawn_time < 1.5
    started = time.monotonic()
    await driver.pause("g0")
    assert time.monotonic() - started < 0.1


async def test_thousands_of_guests_are_cheap() -> None:
    driver = await started_driver(host_count=10)
    nodes = await driver.get_available_nodes()
    started = time.monotonic()
    for index in range(3000):
        await driver.spawn(make_spec(f"g{index}"), nodes[index % 10])
    assert len(await driver.list_instances()) == 3000
    assert time.monotonic() - started < 5


# -- loading -------------------------------------------------------------------------------


async def test_load_driver_builds_a_configured_fake() -> None:
    driver = load_driver("fake", {"host_count": "2", "vcpus": "8"})
    assert isinstance(driver, FakeDriver)
    await driver.init_host(HOST)
    nodes = await driver.get_available_nodes()
    assert len(nodes) == 2
    assert (await driver.get_available_resource(nodes[0])).vcpus == 8


def test_load_driver_refuses_unknown_names_and_options() -> None:
    with pytest.raises(DriverError):
        load_driver("xen", {})
    with pytest.raises(DriverError):
        load_driver("fake", {"no_such_option": 1})


class NoLibvirtPython(importlib.abc.MetaPathFinder):
    """An import system without libvirt-python, as on a host where it was never installed."""

    def find_spec(self, name: str, path: object = None, target: object = None) -> None:
        if name == "libvirt":
            raise ModuleNotFoundError("No module named 'libvirt'", name="libvirt")


def test_load_driver_names_a_missing_libvirt_python(monkeypatch: pytest.MonkeyPatch) -> None:
    """An agent configured for libvirt on a host without libvirt-python gets a DriverError that
    names the missing module, not a traceback. The driver module is unloaded so that its
    `import libvirt` runs again, against an import system that cannot find libvirt."""
    monkeypatch.setattr(sys, "meta_path", [NoLibvirtPython(), *sys.meta_path])
    monkeypatch.delitem(sys.modules, "libvirt", raising=False)
    monkeypatch.delitem(sys.modules, "cloudd.agent.compute.drivers.libvirt", raising=False)
    with pytest.raises(DriverError) as refused:
        load_driver("libvirt", {})
    assert str(refused.value) == ("compute driver 'libvirt' is not available: "
                                  "No module named 'libvirt'")


def test_power_state_names() -> None:
    assert power_state.name(power_state.SHUTDOWN) == "shutdown"
    assert power_state.name(42) == "unknown(42)"
