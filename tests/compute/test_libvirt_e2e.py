"""A real cloud end to end: the controller in-process, a `cloudd agent` subprocess with the
libvirt driver (QEMU software emulation here), guests booted through the Compute REST API from
images registered the way `make run` registers them (an AKI, an ARI and a disk image whose
kernel_id/ramdisk_id properties make it boot directly, the EC2 model).

What a user sees is checked: server status, the console output API (the guest's ready line),
libvirt's view (`virsh`), the snapshot image booting a second server, and that nothing is left
behind. The agent is killed with SIGKILL while a guest runs; the guest is destroyed behind
cloudd's back; the restarted agent reports it SHUTOFF. A stopped server is shelved (offloaded
at once: its domain and files go) and unshelved from its shelved image. Six boots in all (CI
budget).
"""
# ruff: noqa: F811 - the fixtures imported from harness.libvirt_host are test parameters here

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from harness.libvirt import AGENT_HOST, LibvirtCloud, domstate, libvirt_cloud
from harness.libvirt_host import (  # noqa: F401 - fixtures
    READY_LINE,
    TEST_ROOT,
    libvirt_host,
    virsh,
)

pytestmark = pytest.mark.slow


def files_under(path: Path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*") if p.is_file())


@pytest.fixture
async def cloud(libvirt_host: Path) -> AsyncIterator[LibvirtCloud]:
    async with libvirt_cloud(libvirt_host) as opened:
        yield opened


# ----- the test ---------------------------------------------------------------------------


async def test_real_guest_through_every_action(cloud: LibvirtCloud) -> None:
    vm1 = await cloud.create("e2e-vm1", cloud.images["cloudd-guest"])
    row = await cloud.wait_status(vm1, "ACTIVE")
    assert row["OS-EXT-SRV-ATTR:host"] == AGENT_HOST
    output = await cloud.wait_ready(vm1, 1)
    assert "header=CLOUDD-DISK" in output  # the root disk is the registered image's
    assert domstate(vm1) == "running"

    await power_actions(cloud, vm1)
    vm2 = await snapshot_boots(cloud, vm1)
    await resize_and_confirm(cloud, vm1)
    await guest_powers_itself_off(cloud, vm2)
    await shelve_offload_unshelve(cloud, vm2)
    await agent_killed_guest_destroyed(cloud, vm1)

    for server in (vm1, vm2):
        await cloud.delete(server)
    listed = virsh("list", "--all", "--uuid").split()
    assert vm1 not in listed and vm2 not in listed
    # No domain, disk, console log, base image or snapshot file: only empty cache directories.
    assert await asyncio.to_thread(files_under, cloud.instances) == []
    left = await asyncio.to_thread(lambda: sorted(p.name for p in cloud.instances.iterdir()))
    assert set(left) <= {"_base", "snapshots"}, left


async def power_actions(cloud: LibvirtCloud, vm1: str) -> None:
    """reboot (soft: the ACPI button), stop/start, pause/unpause, suspend/resume."""
    await cloud.action(vm1, {"reboot": {"type": "SOFT"}})
    await cloud.wait_status(vm1, "ACTIVE")
    await cloud.wait_ready(vm1, 2)  # the guest booted again

    await cloud.action(vm1, {"os-stop": None})
    row = await cloud.wait_status(vm1, "SHUTOFF")
    assert row["OS-EXT-STS:power_state"] == 4 and domstate(vm1) == "shut off"
    await cloud.action(vm1, {"os-start": None})
    await cloud.wait_status(vm1, "ACTIVE")
    await cloud.wait_ready(vm1, 3)

    await cloud.action(vm1, {"pause": None})
    await cloud.wait_status(vm1, "PAUSED")
    assert domstate(vm1) == "paused"
    await cloud.action(vm1, {"unpause": None})
    await cloud.wait_status(vm1, "ACTIVE")
    assert domstate(vm1) == "running"

    await cloud.action(vm1, {"suspend": None})
    await cloud.wait_status(vm1, "SUSPENDED")
    assert domstate(vm1) == "shut off"  # its memory is in libvirt's managed save image
    assert "Managed save:   yes" in virsh("dominfo", vm1)
    await cloud.action(vm1, {"resume": None})
    await cloud.wait_status(vm1, "ACTIVE")
    assert domstate(vm1) == "running"
    # Restored, not rebooted: still three boots on its console.
    assert (await cloud.console(vm1)).count(READY_LINE) == 3


async def snapshot_boots(cloud: LibvirtCloud, vm1: str) -> str:
    """createImage -> an active image (with the base's kernel_id/ramdisk_id) -> a new server."""
    reply = await cloud.action(vm1, {"createImage": {"name": "e2e-snap"}})
    image_id = reply["image_id"]
    deadline = time.monotonic() + 120
    image: dict[str, Any] = {}
    while time.monotonic() < deadline:
        code, image, _ = await cloud.call("GET", f"/image/v2/images/{image_id}")
        assert code == 200, image
        if image["status"] == "active":
            break
        await asyncio.sleep(0.5)
    assert image["status"] == "active", image
    assert image["kernel_id"] == cloud.images["kernel"]
    assert image["disk_format"] == "qcow2" and image["size"] > 0
    await cloud.wait_status(vm1, "ACTIVE")

    vm2 = await cloud.create("e2e-vm2", image_id)
    await cloud.wait_status(vm2, "ACTIVE")
    output = await cloud.wait_ready(vm2, 1)
    assert "header=CLOUDD-DISK" in output  # the snapshot carried vm1's disk
    return vm2


async def resize_and_confirm(cloud: LibvirtCloud, vm1: str) -> None:
    """m1.nano (128 MiB) -> m1.tiny (512 MiB): libvirt's domain gets the new memory."""
    await cloud.action(vm1, {"resize": {"flavorRef": "1"}})
    await cloud.wait_status(vm1, "VERIFY_RESIZE")
    assert "Max memory:     524288 KiB" in virsh("dominfo", vm1)
    await cloud.action(vm1, {"confirmResize": None}, expect=204)
    row = await cloud.wait_status(vm1, "ACTIVE")
    assert row["flavor"]["original_name"] == "m1.tiny"
    await cloud.wait_ready(vm1, 4)  # booted with the new flavor
    assert not await asyncio.to_thread((cloud.instances / f"{vm1}_resize").exists)


async def guest_powers_itself_off(cloud: LibvirtCloud, vm2: str) -> None:
    """The ACPI button pressed behind cloudd's back: the guest's acpid powers it off, and the
    libvirt lifecycle event (not the hourly periodic sync) makes the server SHUTOFF."""
    virsh("shutdown", vm2)
    row = await cloud.wait_status(vm2, "SHUTOFF", seconds=30)
    assert row["OS-EXT-STS:power_state"] == 4
    assert domstate(vm2) == "shut off"


async def shelve_offload_unshelve(cloud: LibvirtCloud, vm2: str) -> None:
    """shelve (offloaded at once, Nova's default): the domain and the instance's files are
    gone, the disk is in the "<name>-shelved" image; unshelve boots that disk again, and the
    image is deleted."""
    await cloud.action(vm2, {"shelve": None})
    row = await cloud.wait_status(vm2, "SHELVED_OFFLOADED", seconds=180)
    assert row["OS-EXT-SRV-ATTR:host"] is None
    assert vm2 not in virsh("list", "--all", "--uuid").split()
    assert not await asyncio.to_thread((cloud.instances / vm2).exists)
    _, body, _ = await cloud.call("GET", "/image/v2/images?name=e2e-vm2-shelved")
    (image,) = body["images"]
    assert image["status"] == "active" and image["instance_uuid"] == vm2
    await cloud.action(vm2, {"unshelve": None})
    row = await cloud.wait_status(vm2, "ACTIVE")
    assert row["OS-EXT-SRV-ATTR:host"] == AGENT_HOST and domstate(vm2) == "running"
    output = await cloud.wait_ready(vm2, 1)  # a new domain: its console log starts anew
    assert "header=CLOUDD-DISK" in output  # the shelved disk
    code, _, _ = await cloud.call("GET", f"/image/v2/images/{image['id']}")
    assert code == 404


async def agent_killed_guest_destroyed(cloud: LibvirtCloud, vm1: str) -> None:
    """SIGKILL the agent; the guest keeps running; `virsh destroy` it while the agent is
    away; the restarted agent reconciles at start: the server is SHUTOFF."""
    await cloud.kill_agent()
    assert domstate(vm1) == "running"  # guests do not depend on the agent process
    virsh("destroy", vm1)
    assert (await cloud.server(vm1))["status"] == "ACTIVE"  # nobody has looked yet
    await cloud.start_agent()
    row = await cloud.wait_status(vm1, "SHUTOFF", seconds=30)
    assert row["OS-EXT-STS:power_state"] == 4
    assert await asyncio.to_thread((cloud.instances / vm1).is_dir)  # reconciled, not destroyed
