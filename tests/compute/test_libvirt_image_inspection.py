"""The libvirt driver inspects every base image on the host before qemu-img or libvirt sees it:
a crafted file that reached the host without going through an upload (put straight into the
image cache, or handed over as the image's local file) fails the build, and no guest is made."""
# ruff: noqa: F811 - the fixtures imported from harness.libvirt_host are test parameters here

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest
from crafted_images import CRAFTED, make_image
from harness.libvirt_host import instances_path, libvirt_host, virsh  # noqa: F401 - fixtures

from cloudd.agent.compute.drivers.base import DriverError
from cloudd.rpc.contracts.compute import ImageInfo

from .test_libvirt_driver import NODE, guest_spec, make_driver

pytestmark = pytest.mark.slow


async def _spawn_refused(instances: Path, guest_dir: Path, image: ImageInfo, name: str) -> str:
    driver = await make_driver(instances)
    spec = guest_spec(guest_dir, name, image=image)
    try:
        with pytest.raises(DriverError) as refused:
            await driver.spawn(spec, NODE)
    finally:
        await driver.cleanup_host()
    assert name not in await asyncio.to_thread(virsh, "list", "--all", "--name")
    assert not (instances / spec.uuid).exists()
    return str(refused.value)


@pytest.mark.parametrize("kind", sorted(CRAFTED))
@pytest.mark.parametrize("declared", ["qcow2", "raw"])
async def test_crafted_file_in_the_host_image_cache_is_refused(
        instances_path: Path, libvirt_host: Path, tmp_path: Path, kind: str, declared: str) -> None:
    crafted = await asyncio.to_thread(make_image, kind, tmp_path)
    cached = instances_path / "_base" / f"crafted-{kind}"
    cached.parent.mkdir(mode=0o755)
    await asyncio.to_thread(shutil.copyfile, crafted, cached)
    image = ImageInfo(id=cached.name, disk_format=declared)
    reason = await _spawn_refused(instances_path, libvirt_host, image, "instance-c10000a1")
    assert f"image {cached.name} refused on this host" in reason
    assert ("safety check" in reason if declared == CRAFTED[kind] else
            f"does not match its disk_format {declared}" in reason), reason
    assert not cached.exists()  # no instance uses it: cleanup_host removed it from the cache


async def test_crafted_local_file_never_enters_the_cache(
        instances_path: Path, libvirt_host: Path, tmp_path: Path) -> None:
    crafted = await asyncio.to_thread(make_image, "qcow2-backing-file", tmp_path)
    image = ImageInfo(id="crafted-local", disk_format="qcow2", path=str(crafted))
    reason = await _spawn_refused(instances_path, libvirt_host, image, "instance-c10000a2")
    assert "backing_file" in reason
    assert sorted(p.name for p in (instances_path / "_base").iterdir()) == []
