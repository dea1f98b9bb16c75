"""The libvirt driver on real QEMU guests (software emulation where KVM cannot run guests).

One guest goes through every action of the compute manager, checking what a user would see:
its serial console, its power state, its VNC server, its snapshot image, its size, and that
nothing is left behind afterwards. Boots are serialized and few (CI budget: about 4 s each).
"""
# ruff: noqa: F811 - the fixtures imported from harness.libvirt_host are test parameters here

from __future__ import annotations

import asyncio
import json
import uuid as uuid_module
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from harness.libvirt_host import (  # noqa: F401 - fixtures
    READY_LINE,
    instances_path,
    libvirt_host,
    virsh,
    wait_for,
)

from cloudd.agent.compute.drivers.base import GuestSpec, InvalidState, LifecycleEvent
from cloudd.rpc.contracts.compute import ImageInfo
from cloudd.vocab import power_state

if TYPE_CHECKING:
    from cloudd.agent.compute.drivers.libvirt import LibvirtDriver

pytestmark = pytest.mark.slow
NODE = "libvirt-test-host"


def guest_spec(guest_dir: Path, name: str, image: ImageInfo | None = None) -> GuestSpec:
    return GuestSpec(
        uuid=str(uuid_module.uuid4()), name=name, vcpus=1, memory_mb=160, root_gb=1,
        ephemeral_gb=1,
        image=image or ImageInfo(id="tiny-disk", disk_format="qcow2", path=str(guest_dir / "disk.qcow2")),
        # The uncompressed kernel boots twice as fast under TCG (the EC2 AKI/ARI model).
        kernel=ImageInfo(id="tiny-aki", disk_format="aki", path=str(guest_dir / "vmlinux")),
        ramdisk=ImageInfo(id="tiny-ari", disk_format="ari", path=str(guest_dir / "initrd.img")),
    )


async def make_driver(instances: Path) -> LibvirtDriver:
    from cloudd.agent.compute.drivers.libvirt import LibvirtDriver

    driver = LibvirtDriver(instances_path=str(instances), virt_type="auto",
                           clean_shutdown_timeout=20)
    await driver.init_host(NODE)
    return driver


async def ready_count(driver: LibvirtDriver, uuid: str) -> int:
    return (await driver.get_console_output(uuid)).count(READY_LINE)


async def wait_ready(driver: LibvirtDriver, uuid: str, count: int) -> None:
    async def booted() -> bool:
        return await ready_count(driver, uuid) >= count

    await wait_for(booted, 90, f"ready line #{count} on the console of {uuid}")


async def power(driver: LibvirtDriver, uuid: str) -> int:
    return (await driver.get_info(uuid)).power_state


async def test_guest_lifecycle_on_qemu(instances_path: Path, libvirt_host: Path) -> None:
    driver = await make_driver(instances_path)
    spec = guest_spec(libvirt_host, "instance-c1000001")
    uuid = spec.uuid
    try:
        await driver.spawn(spec, NODE)
        assert await driver.list_instances() == [uuid]
        await wait_ready(driver, uuid, 1)
        console = await driver.get_console_output(uuid)
        assert "header=CLOUDD-DISK" in console  # the root disk is the image's, through the overlay
        assert "vdb sectors=2097152" in console  # the flavor's 1 GB ephemeral disk

        address = await driver.get_vnc_console(uuid)
        reader, writer = await asyncio.open_connection(address.host, address.port)
        assert (await reader.readexactly(12)).startswith(b"RFB ")
        writer.close()

        diagnostics = await driver.get_diagnostics(uuid)
        assert (diagnostics.state, diagnostics.driver) == ("running", "libvirt")
        assert [cpu.id for cpu in diagnostics.cpu_details] == [0]
        assert (diagnostics.cpu_details[0].time or 0) > 0
        assert diagnostics.memory_max_mb == 160
        disks = {disk.device: disk for disk in diagnostics.disk_details}
        assert {"vda", "vdb"} <= set(disks), disks
        assert (disks["vda"].read_bytes or 0) > 0  # the guest read its root disk to boot

        await driver.reboot(uuid, hard=False)  # ACPI power button, then start again
        await wait_ready(driver, uuid, 2)
        await driver.reboot(uuid, hard=True)
        await wait_ready(driver, uuid, 3)

        await driver.power_off(uuid)
        assert await power(driver, uuid) == power_state.SHUTDOWN
        with pytest.raises(InvalidState):
            await driver.get_vnc_console(uuid)
        with pytest.raises(InvalidState):
            await driver.inject_nmi(uuid)  # trigger_crash_dump needs a running guest
        with pytest.raises(InvalidState):
            await driver.get_diagnostics(uuid)
        await driver.power_on(uuid)
        await wait_ready(driver, uuid, 4)

        await driver.pause(uuid)
        assert await power(driver, uuid) == power_state.PAUSED
        with pytest.raises(InvalidState):
            await driver.suspend(uuid)
        await driver.unpause(uuid)
        assert await power(driver, uuid) == power_state.RUNNING

        await driver.suspend(uuid)  # managed save: memory to disk, no QEMU process
        assert await power(driver, uuid) == power_state.SUSPENDED
        await driver.resume(uuid)
        assert await power(driver, uuid) == power_state.RUNNING
        assert await ready_count(driver, uuid) == 4  # restored, not rebooted
        await driver.inject_nmi(uuid)  # virDomainInjectNMI: this guest has no kdump, it goes on
        assert await power(driver, uuid) == power_state.RUNNING

        await check_snapshot_boots(driver, uuid, instances_path, libvirt_host)
        await check_resize(driver, uuid)
    finally:
        await driver.destroy(uuid)
        await driver.cleanup_host()

    assert spec.name not in await asyncio.to_thread(virsh, "list", "--all", "--name")
    leftovers = await asyncio.to_thread(lambda: sorted(str(p) for p in instances_path.rglob("*")))
    assert leftovers == [str(instances_path / "_base")]  # unused base images are removed too


async def check_snapshot_boots(driver: LibvirtDriver, uuid: str, instances: Path, guest_dir: Path) -> None:
    dest = instances.parent / "snapshot.qcow2"
    await driver.snapshot(uuid, str(dest))
    assert await power(driver, uuid) == power_state.RUNNING
    process = await asyncio.create_subprocess_exec(
        "qemu-img", "info", "--output=json", str(dest), stdout=asyncio.subprocess.PIPE)
    info = json.loads((await process.communicate())[0])
    assert info["format"] == "qcow2" and "backing-filename" not in info
    assert info["virtual-size"] == 1 << 30  # the flavor's root_gb, grown from the 64 MiB image

    snapshot_image = ImageInfo(id="snap-1", disk_format="qcow2", path=str(dest))
    clone = guest_spec(guest_dir, "instance-c1000002", image=snapshot_image)
    await driver.spawn(clone, NODE)
    try:
        await wait_ready(driver, clone.uuid, 1)
        assert "header=CLOUDD-DISK" in await driver.get_console_output(clone.uuid)
    finally:
        await driver.destroy(clone.uuid)
    assert not (instances / "_base" / "snap-1").exists()


async def check_resize(driver: LibvirtDriver, uuid: str) -> None:
    old = await driver.get_info(uuid)
    bigger = GuestSpec(uuid=uuid, name="instance-c1000001", vcpus=2, memory_mb=192, root_gb=2,
                       ephemeral_gb=1)
    before = await ready_count(driver, uuid)
    await driver.resize(uuid, bigger, power_on=True)
    await wait_ready(driver, uuid, before + 1)
    info = await driver.get_info(uuid)
    assert (info.vcpus, info.memory_mb, info.power_state) == (2, 192, power_state.RUNNING)
    assert "vda sectors=4194304" in (await driver.get_console_output(uuid))  # 2 GB root now
    with pytest.raises(InvalidState):
        await driver.resize(uuid, bigger)
    await driver.revert_resize(uuid, power_on=False)
    info = await driver.get_info(uuid)
    assert (info.vcpus, info.memory_mb, info.power_state) == (old.vcpus, old.memory_mb,
                                                              power_state.SHUTDOWN)
    await driver.resize(uuid, bigger, power_on=False)
    await driver.confirm_resize(uuid)
    with pytest.raises(InvalidState):
        await driver.confirm_resize(uuid)
    assert (await driver.get_info(uuid)).memory_mb == 192


async def test_guest_destroyed_behind_our_back_is_reported_shutoff(
    instances_path: Path, libvirt_host: Path
) -> None:
    driver = await make_driver(instances_path)
    events: list[LifecycleEvent] = []
    await driver.set_event_callback(events.append)
    spec = guest_spec(libvirt_host, "instance-c1000003")
    try:
        await driver.spawn(spec, NODE)
        await wait_for(lambda: _has(events, spec.uuid, power_state.RUNNING), 20, "a STARTED event")
        await asyncio.to_thread(virsh, "destroy", spec.name)  # QEMU killed outside cloudd

        await wait_for(lambda: _has(events, spec.uuid, power_state.SHUTDOWN), 20, "a STOPPED event")
        assert await power(driver, spec.uuid) == power_state.SHUTDOWN
    finally:
        await driver.destroy(spec.uuid)
        await driver.cleanup_host()
    assert spec.name not in await asyncio.to_thread(virsh, "list", "--all", "--name")


async def _has(events: list[LifecycleEvent], uuid: str, state: int) -> bool:
    return any(event.uuid == uuid and event.power_state == state for event in events)
