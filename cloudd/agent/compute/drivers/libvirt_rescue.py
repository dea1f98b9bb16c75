"""Rescue for the libvirt driver (Nova's ``LibvirtDriver.rescue``/``unrescue``).

The guest is stopped and its domain redefined to boot a fresh disk of the rescue image, with
the guest's own disks attached after it (its root disk is ``vdb`` to the rescue system), its
NICs and console log unchanged. The rescue's files live in ``<uuid>/rescue``; the guest's own
domain XML stays in ``<uuid>/domain.xml``, and unrescue defines it again and drops the rest.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Protocol

from cloudd.agent.compute.drivers import libvirt_images as images
from cloudd.agent.compute.drivers.base import DriverError, GuestSpec, InvalidState
from cloudd.agent.compute.drivers.libvirt_files import InstanceFiles
from cloudd.agent.compute.drivers.libvirt_host import Host
from cloudd.rpc.contracts.compute import ImageInfo
from cloudd.vocab import power_state


class LibvirtDriver(Protocol):
    """What rescue uses of ``libvirt.LibvirtDriver`` (a protocol: no import circle)."""

    instances_path: Path
    _libvirt: Host

    def _lock(self, uuid: str) -> asyncio.Lock: ...
    async def _require(self, uuid: str, allowed: set[int] | frozenset[int],
                       action: str) -> int: ...
    async def _require_resize(self, uuid: str, pending: bool) -> InstanceFiles: ...
    async def _shutdown(self, uuid: str, clean: bool) -> None: ...
    async def _build_files(self, spec: GuestSpec, files: InstanceFiles,
                           keep_boot_files: bool = False) -> None: ...
    async def _define(self, spec: GuestSpec, files: InstanceFiles,
                      rescue: InstanceFiles | None = None) -> None: ...

# A guest may be rescued running or stopped (Nova: ACTIVE, STOPPED or ERROR).
_RESCUABLE = frozenset({power_state.RUNNING, power_state.SHUTDOWN, power_state.CRASHED,
                        power_state.NOSTATE})


async def rescue(driver: LibvirtDriver, uuid: str, image: ImageInfo) -> None:
    async with driver._lock(uuid):
        await driver._require(uuid, _RESCUABLE, "rescue")
        await driver._require_resize(uuid, pending=False)
        files = InstanceFiles(driver.instances_path, uuid)
        rescue_files = files.rescue_files()
        if await asyncio.to_thread(rescue_files.dir.exists):
            raise InvalidState(f"instance {uuid} is in rescue already")
        own = await asyncio.to_thread(files.load_spec)
        if own is None:
            raise DriverError(f"instance {uuid} has no record of its guest: cannot rescue it")
        spec = images.with_boot_images(own.model_copy(update={
            "image": image, "kernel": None, "ramdisk": None, "ephemeral_gb": 0}))
        await driver._shutdown(uuid, clean=False)
        try:
            await driver._build_files(spec, rescue_files)
            await driver._define(spec, files, rescue=rescue_files)
            await driver._libvirt.domain_call(uuid, "create")
        except Exception as exc:
            await _own_domain_again(driver, files)  # left stopped, as it was defined
            raise DriverError(f"cannot rescue {uuid}: {exc}") from exc


async def unrescue(driver: LibvirtDriver, uuid: str) -> None:
    async with driver._lock(uuid):
        files = InstanceFiles(driver.instances_path, uuid)
        if not await asyncio.to_thread(files.rescue_files().dir.exists):
            raise InvalidState(f"instance {uuid} is not in rescue")
        await driver._shutdown(uuid, clean=False)
        await _own_domain_again(driver, files)
        await driver._libvirt.domain_call(uuid, "create")


async def _own_domain_again(driver: LibvirtDriver, files: InstanceFiles) -> None:
    xml = await asyncio.to_thread(files.domain_xml.read_text)
    await driver._libvirt.call(driver._libvirt.conn.defineXML, xml)
    await asyncio.to_thread(files.rescue_files().remove)
