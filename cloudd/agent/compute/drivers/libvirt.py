"""The libvirt driver: real QEMU guests (Nova's ``nova/virt/libvirt/driver.py``).

Guests are libvirt domains named ``GuestSpec.name`` with the instance uuid as domain uuid and a
cloudd metadata element (domains of anyone else on the host are left alone). Files live in
``<instances_path>/<uuid>`` (see ``libvirt_files``), base images in ``_base`` (``libvirt_images``).
Every libvirt call runs in a worker thread (``libvirt_host``); one lock per uuid serializes the
actions on one guest. Power-state rules: see ``base``. Host set-up: scripts/start-libvirt.sh.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import time
from pathlib import Path
from typing import Any

import libvirt

from cloudd.agent.compute.drivers import libvirt_images as images
from cloudd.agent.compute.drivers import libvirt_rescue
from cloudd.agent.compute.drivers.base import (
    BuildFailed,
    ComputeDriver,
    DriverError,
    EventCallback,
    GuestInfo,
    GuestSpec,
    InstanceNotFound,
    InvalidState,
    VncAddress,
)
from cloudd.agent.compute.drivers.libvirt_diagnostics import read_diagnostics
from cloudd.agent.compute.drivers.libvirt_domains import host_domains
from cloudd.agent.compute.drivers.libvirt_files import RESIZE_SUFFIX, InstanceFiles, bases_in_use, read_tail
from cloudd.agent.compute.drivers.libvirt_host import Host, lifecycle_event, translate
from cloudd.agent.compute.drivers.libvirt_resources import host_resources
from cloudd.agent.compute.drivers.libvirt_xml import DiskSpec, DomainLayout, domain_xml
from cloudd.agent.compute.drivers.libvirt_xml import vnc_port as xml_vnc_port
from cloudd.rpc.contracts.compute import Diagnostics, HostDomain, HostResources, ImageInfo
from cloudd.vocab import power_state

LOG = logging.getLogger(__name__)
GiB = 1 << 30
MAX_CONSOLE_BYTES = 100 * 1024
_STOPPED = frozenset({power_state.SHUTDOWN, power_state.CRASHED})
_REBUILDABLE = _STOPPED | {power_state.RUNNING}
_ACTIVE = frozenset({power_state.RUNNING, power_state.PAUSED})
# Seconds between two presses of the ACPI power button while a guest does not power off
# (Nova waits 10 s; a guest still booting when the stop comes should go down in seconds).
ACPI_RETRY_INTERVAL = 0.5


class LibvirtDriver(ComputeDriver):
    def __init__(
        self,
        instances_path: str = "instances",
        connection_uri: str = "qemu:///system",
        virt_type: str = "auto",
        vnc_enabled: bool = True,
        vncserver_listen: str = "127.0.0.1",
        vnc_host: str = "",
        image_url_template: str = "",
        image_tls: images.TlsContext | None = None,
        clean_shutdown_timeout: float = 60.0,
        host_ip: str | None = None,
    ) -> None:
        if virt_type not in ("auto", "kvm", "qemu"):
            raise DriverError(f"virt_type must be auto, kvm or qemu, not {virt_type!r}")
        self.instances_path = Path(instances_path).resolve()
        # auto: software emulation. KVM is only trusted when configured: a /dev/kvm that exists
        # may still be unable to run ordinary guests (nested PVM, see the hypervisor reference).
        self.virt_type = "kvm" if virt_type == "kvm" else "qemu"
        self.vncserver_listen = vncserver_listen if vnc_enabled else None
        self.vnc_host = vnc_host or vncserver_listen
        self.clean_shutdown_timeout = float(clean_shutdown_timeout)
        self.host_ip = host_ip
        self.images = images.ImageCache(self.instances_path, image_url_template, image_tls)
        self._libvirt = Host(connection_uri)
        self._host: str | None = None
        self._event_callback: EventCallback | None = None
        self._locks: dict[str, asyncio.Lock] = {}
        self._building: set[str] = set()
        self.cloud_id = ""  # set when the agent registers; written into each domain

    # -- host ------------------------------------------------------------------------------

    async def init_host(self, host: str) -> None:
        await asyncio.to_thread(self.instances_path.mkdir, mode=0o755, parents=True, exist_ok=True)
        await self._libvirt.connect(self._on_libvirt_event, self._owns)
        self._host = host

    async def cleanup_host(self) -> None:
        self._event_callback = None
        await self._libvirt.close()

    async def set_event_callback(self, callback: EventCallback) -> None:
        self._event_callback = callback

    async def check_connection(self) -> None:
        """One cheap round trip to libvirtd (the host health check); DriverError if it fails."""
        try:
            await self._libvirt.call(self._libvirt.conn.getLibVersion)
        except libvirt.libvirtError as exc:
            raise translate(exc) from exc

    async def get_available_nodes(self) -> list[str]:
        if self._host is None:
            raise DriverError("libvirt driver used before init_host()")
        return [self._host]

    async def get_available_resource(self, nodename: str) -> HostResources:
        if nodename not in await self.get_available_nodes():
            raise DriverError(f"node {nodename!r} is not served by this libvirt driver")
        return await self._libvirt.call(
            host_resources, self._libvirt.conn, nodename, self.instances_path, self.host_ip)

    async def list_instances(self) -> list[str]:
        ours, _ = await self._libvirt.call(
            host_domains, self._libvirt.conn, self.cloud_id, str(self.instances_path))
        return ours

    async def unknown_domains(self) -> list[HostDomain]:
        _, others = await self._libvirt.call(
            host_domains, self._libvirt.conn, self.cloud_id, str(self.instances_path))
        return others

    async def get_info(self, uuid: str) -> GuestInfo:
        domain = await self._libvirt.lookup(uuid)
        state = await self._libvirt.power_state(uuid)
        info = await self._libvirt.call(domain.info)
        return GuestInfo(uuid=uuid, power_state=state, vcpus=info[3], memory_mb=info[1] // 1024)

    # -- build and delete ------------------------------------------------------------------

    async def spawn(self, spec: GuestSpec, node: str) -> None:
        if node not in await self.get_available_nodes():
            raise BuildFailed(f"node {node!r} is not served by this libvirt driver")
        if await self.instance_exists(spec.uuid):
            raise InvalidState(f"instance {spec.uuid} already exists on this hypervisor")
        spec = images.with_boot_images(spec)
        self._building.add(spec.uuid)
        async with self._lock(spec.uuid):
            files = InstanceFiles(self.instances_path, spec.uuid)
            try:
                await self._build_files(spec, files)
                await self._define(spec, files)
                await self._libvirt.domain_call(spec.uuid, "create")
            except Exception as exc:
                await self._remove_guest(spec.uuid)
                if spec.uuid not in self._building:
                    raise InstanceNotFound(spec.uuid) from exc
                raise BuildFailed(f"cannot spawn {spec.uuid}: {exc}") from exc
            finally:
                aborted = spec.uuid not in self._building
                self._building.discard(spec.uuid)
            if aborted:  # destroy() came while we were building: it waits for us to finish
                await self._remove_guest(spec.uuid)
                raise InstanceNotFound(spec.uuid)

    async def destroy(self, uuid: str) -> None:
        self._building.discard(uuid)
        async with self._lock(uuid):
            await self._remove_guest(uuid)

    # -- power -----------------------------------------------------------------------------

    async def reboot(self, uuid: str, hard: bool) -> None:
        async with self._lock(uuid):
            state = await self._libvirt.power_state(uuid)
            if not hard:
                if state != power_state.RUNNING:
                    raise InvalidState(f"cannot soft reboot {uuid} while {power_state.name(state)}")
                await self._shutdown(uuid, clean=True)
            else:
                await self._shutdown(uuid, clean=False)
                if await self._libvirt.domain_call(uuid, "hasManagedSaveImage", 0):
                    await self._libvirt.domain_call(uuid, "managedSaveRemove", 0)
            await self._libvirt.domain_call(uuid, "create")

    async def power_off(self, uuid: str) -> None:
        async with self._lock(uuid):
            state = await self._libvirt.power_state(uuid)
            if state == power_state.SUSPENDED:
                await self._libvirt.domain_call(uuid, "managedSaveRemove", 0)
            elif state not in _STOPPED:
                await self._shutdown(uuid, clean=state == power_state.RUNNING)

    async def power_on(self, uuid: str) -> None:
        async with self._lock(uuid):
            state = await self._require(uuid, _STOPPED | {power_state.RUNNING}, "power on")
            if state != power_state.RUNNING:
                await self._libvirt.domain_call(uuid, "create")

    async def pause(self, uuid: str) -> None:
        await self._transition(uuid, {power_state.RUNNING}, "suspend", "pause")

    async def unpause(self, uuid: str) -> None:
        await self._transition(uuid, {power_state.PAUSED}, "resume", "unpause")

    async def suspend(self, uuid: str) -> None:
        await self._transition(uuid, {power_state.RUNNING}, "managedSave", "suspend", 0)

    async def resume(self, uuid: str) -> None:
        # create() of a domain with a managed save image restores it.
        await self._transition(uuid, {power_state.SUSPENDED}, "create", "resume")

    # -- rebuild and resize ----------------------------------------------------------------

    async def rebuild(self, spec: GuestSpec) -> None:
        async with self._lock(spec.uuid):
            await self._require(spec.uuid, _REBUILDABLE, "rebuild")
            await self._require_resize(spec.uuid, pending=False)
            files = InstanceFiles(self.instances_path, spec.uuid)
            old = await asyncio.to_thread(files.load_spec)
            spec = images.with_boot_images(spec)
            # Without a kernel of its own, the new image keeps the guest's kernel and ramdisk;
            # the guest keeps its NICs (the manager's spec does not carry them).
            if old is not None:
                spec = spec.model_copy(update={
                    "kernel": spec.kernel or old.kernel, "ramdisk": spec.ramdisk or old.ramdisk,
                    "network_info": spec.network_info or old.network_info})
            await self._shutdown(spec.uuid, clean=False)
            await asyncio.to_thread(files.disk.unlink, True)
            await self._build_files(spec, files, keep_boot_files=True)
            await self._define(spec, files)
            await self._libvirt.domain_call(spec.uuid, "create")
        await self._remove_unused_bases()

    async def resize(self, uuid: str, new_spec: GuestSpec, power_on: bool = True) -> None:
        if new_spec.uuid != uuid:
            raise DriverError(f"resize of {uuid} given a spec for {new_spec.uuid}")
        async with self._lock(uuid):
            await self._require(uuid, _REBUILDABLE, "resize")
            files = InstanceFiles(self.instances_path, uuid)
            old_files = await self._require_resize(uuid, pending=False)
            await self._shutdown(uuid, clean=True)
            # The old directory is kept whole for revert; the new one starts as its copy.
            await asyncio.to_thread(shutil.copytree, files.dir, old_files.dir)
            await images.grow(files.disk, new_spec.root_gb * GiB)
            if new_spec.ephemeral_gb and await asyncio.to_thread(files.ephemeral.exists):
                await images.grow(files.ephemeral, new_spec.ephemeral_gb * GiB)
            elif new_spec.ephemeral_gb:
                await images.create_blank(files.ephemeral, new_spec.ephemeral_gb * GiB)
            old = await asyncio.to_thread(files.load_spec)
            spec = new_spec.model_copy(update={
                "image": new_spec.image or (old and old.image),
                "kernel": old.kernel if old else None, "ramdisk": old.ramdisk if old else None,
                "network_info": new_spec.network_info or (old.network_info if old else [])})
            await self._define(spec, files)
            if power_on:
                await self._libvirt.domain_call(uuid, "create")

    async def confirm_resize(self, uuid: str) -> None:
        async with self._lock(uuid):
            old_files = await self._require_resize(uuid, pending=True)
            await asyncio.to_thread(old_files.remove)
        await self._remove_unused_bases()

    async def revert_resize(self, uuid: str, power_on: bool = True) -> None:
        async with self._lock(uuid):
            files = InstanceFiles(self.instances_path, uuid)
            old_files = await self._require_resize(uuid, pending=True)
            await self._shutdown(uuid, clean=False)
            await asyncio.to_thread(files.remove)
            await asyncio.to_thread(os.rename, old_files.dir, files.dir)
            xml = await asyncio.to_thread(files.domain_xml.read_text)
            await self._libvirt.call(self._libvirt.conn.defineXML, xml)
            if power_on:
                await self._libvirt.domain_call(uuid, "create")
        await self._remove_unused_bases()

    # -- rescue ----------------------------------------------------------------------------

    async def rescue(self, uuid: str, image: ImageInfo) -> None:
        await libvirt_rescue.rescue(self, uuid, image)
        await self._remove_unused_bases()

    async def unrescue(self, uuid: str) -> None:
        await libvirt_rescue.unrescue(self, uuid)
        await self._remove_unused_bases()

    # -- images and consoles ---------------------------------------------------------------

    async def snapshot(self, uuid: str, dest_path: str) -> None:
        async with self._lock(uuid):
            state = await self._libvirt.power_state(uuid)
            files = InstanceFiles(self.instances_path, uuid)
            # A running guest is paused for the copy so that the image is consistent.
            if state == power_state.RUNNING:
                await self._libvirt.domain_call(uuid, "suspend")
            try:
                await images.convert_to_qcow2(files.disk, Path(dest_path))
            finally:
                if state == power_state.RUNNING:
                    await self._libvirt.domain_call(uuid, "resume")

    async def inject_nmi(self, uuid: str) -> None:
        # virDomainInjectNMI; libvirt itself refuses a domain with no running QEMU.
        await self._transition(uuid, {power_state.RUNNING, power_state.PAUSED}, "injectNMI",
                               "trigger_crash_dump", 0)

    async def get_console_output(self, uuid: str) -> str:
        await self._libvirt.lookup(uuid)
        log = InstanceFiles(self.instances_path, uuid).console_log
        return await asyncio.to_thread(read_tail, log, MAX_CONSOLE_BYTES)

    async def get_vnc_console(self, uuid: str) -> VncAddress:
        state = await self._libvirt.power_state(uuid)
        xml = await self._libvirt.domain_call(uuid, "XMLDesc", 0)
        port = xml_vnc_port(xml)
        if state not in _ACTIVE or port is None:
            raise InvalidState(f"instance {uuid} is {power_state.name(state)}: no VNC console")
        return VncAddress(host=self.vnc_host, port=port)

    async def get_diagnostics(self, uuid: str) -> Diagnostics:
        state = await self._libvirt.power_state(uuid)
        if state != power_state.RUNNING:
            raise InvalidState(f"instance {uuid} is {power_state.name(state)}: diagnostics "
                               "are kept for running guests only")
        domain = await self._libvirt.lookup(uuid)
        try:
            return await self._libvirt.call(read_diagnostics, domain)
        except libvirt.libvirtError as exc:
            raise translate(exc, uuid) from exc

    # -- internals -------------------------------------------------------------------------

    def _lock(self, uuid: str) -> asyncio.Lock:
        return self._locks.setdefault(uuid, asyncio.Lock())

    async def _require(self, uuid: str, allowed: set[int] | frozenset[int], action: str) -> int:
        state = await self._libvirt.power_state(uuid)
        if state not in allowed:
            raise InvalidState(f"cannot {action} instance {uuid} while {power_state.name(state)}")
        return state

    async def _require_resize(self, uuid: str, pending: bool) -> InstanceFiles:
        """The files kept for revert; InvalidState unless a resize is ``pending`` or not."""
        old_files = InstanceFiles(self.instances_path, uuid, RESIZE_SUFFIX)
        if await asyncio.to_thread(old_files.dir.exists) != pending:
            raise InvalidState(f"instance {uuid} has a resize awaiting confirmation" if not pending
                               else f"instance {uuid} has no resize to confirm or revert")
        return old_files

    async def _transition(self, uuid: str, allowed: set[int], method: str, action: str,
                          *args: Any) -> None:
        async with self._lock(uuid):
            await self._require(uuid, allowed, action)
            await self._libvirt.domain_call(uuid, method, *args)

    async def _build_files(self, spec: GuestSpec, files: InstanceFiles,
                           keep_boot_files: bool = False) -> None:
        await asyncio.to_thread(files.create_dir)
        bases = []
        if spec.image is not None and spec.image.disk_format not in ("aki", "ari"):
            base, base_format = await self.images.fetch(spec.image)
            bases.append(spec.image.id)
            await images.create_overlay(base, base_format, files.disk, spec.root_gb * GiB)
        elif spec.root_gb:
            await images.create_blank(files.disk, spec.root_gb * GiB)
        for image, target in ((spec.kernel, files.kernel), (spec.ramdisk, files.ramdisk)):
            if image is None:
                continue
            bases.append(image.id)
            if not (keep_boot_files and await asyncio.to_thread(target.exists)):
                # A copy each: libvirt relabels the files a running guest uses.
                source, _ = await self.images.fetch(image)  # inspected: raw bytes (aki/ari)
                await asyncio.to_thread(shutil.copyfile, source, target)
        if spec.ephemeral_gb and not await asyncio.to_thread(files.ephemeral.exists):
            await images.create_blank(files.ephemeral, spec.ephemeral_gb * GiB)
        await asyncio.to_thread(files.save, spec, bases)

    async def _define(self, spec: GuestSpec, files: InstanceFiles,
                      rescue: InstanceFiles | None = None) -> None:
        """Define the guest's domain. With `rescue`, the rescue domain: the rescue image's disk
        first, the guest's own disks after it, the rescue image's kernel; its XML goes to the
        rescue directory, so the guest's own stays for unrescue."""
        boot = rescue or files
        paths = [*([rescue.disk] if rescue else []), files.disk, files.ephemeral]
        present = [path for path in paths if await asyncio.to_thread(path.exists)]
        disks = [DiskSpec(str(path), "vd" + "abc"[index]) for index, path in enumerate(present)]
        layout = DomainLayout(
            uuid=spec.uuid, name=spec.name, virt_type=self.virt_type, vcpus=spec.vcpus,
            memory_mb=spec.memory_mb, console_log=str(files.console_log),
            instances_path=str(self.instances_path), cloud_id=self.cloud_id, disks=disks,
            kernel=str(boot.kernel) if spec.kernel else None,
            ramdisk=str(boot.ramdisk) if spec.ramdisk else None,
            vnc_listen=self.vncserver_listen, network_info=spec.network_info,
        )
        xml = domain_xml(layout)
        await asyncio.to_thread(boot.domain_xml.write_text, xml)
        try:
            await self._libvirt.call(self._libvirt.conn.defineXML, xml)
        except libvirt.libvirtError as exc:
            raise DriverError(f"libvirt rejected the domain of {spec.uuid}: {exc}") from exc

    async def _shutdown(self, uuid: str, clean: bool) -> None:
        """Stop the domain: the ACPI power button first when ``clean``, then pull the plug."""
        domain = await self._libvirt.lookup(uuid)
        if not await self._libvirt.call(domain.isActive):
            return
        if clean and await self._press_power_button(uuid, domain):
            return
        try:
            await self._libvirt.call(domain.destroy)
        except libvirt.libvirtError as exc:
            if await self._libvirt.call(domain.isActive):
                raise DriverError(f"cannot stop instance {uuid}: {exc}") from exc

    async def _press_power_button(self, uuid: str, domain: libvirt.virDomain) -> bool:
        """Press the ACPI power button until the guest powers off (true) or the clean shutdown
        timeout ends (false). A press is lost when the guest is not yet listening (early in its
        boot, as right after ACTIVE): it is pressed again every ACPI_RETRY_INTERVAL seconds, as
        Nova's driver does every 10 s, but often enough that such a stop still takes seconds."""
        deadline = time.monotonic() + self.clean_shutdown_timeout
        next_press = 0.0
        while time.monotonic() < deadline:
            if time.monotonic() >= next_press:
                try:
                    await self._libvirt.call(domain.shutdown)
                except libvirt.libvirtError as exc:
                    # Fails too when the guest powered off since the last look.
                    if not await self._libvirt.call(domain.isActive):
                        return True
                    LOG.warning("clean shutdown of %s failed (%s): destroying it", uuid, exc)
                    return False
                next_press = time.monotonic() + ACPI_RETRY_INTERVAL
            await asyncio.sleep(0.1)  # a cheap look: a stop is done the moment the guest is
            if not await self._libvirt.call(domain.isActive):
                return True
        LOG.warning("instance %s ignored ACPI shutdown for %.0fs: destroying it",
                    uuid, self.clean_shutdown_timeout)
        return False

    async def _remove_guest(self, uuid: str) -> None:
        """Domain, managed save, disks, console log, instance and resize directories."""
        try:
            await self._shutdown(uuid, clean=False)
            flags = libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE
            await self._libvirt.domain_call(uuid, "undefineFlags", flags)
        except InstanceNotFound:
            pass
        for suffix in ("", RESIZE_SUFFIX):
            await asyncio.to_thread(InstanceFiles(self.instances_path, uuid, suffix).remove)
        await self._remove_unused_bases()

    async def _remove_unused_bases(self) -> None:
        in_use = await asyncio.to_thread(bases_in_use, self.instances_path)
        removed = await self.images.remove_unused(in_use)
        if removed:
            LOG.info("removed unused base images: %s", ", ".join(removed))

    def _owns(self, uuid: str) -> bool:
        """Runs on libvirt's event thread: is this domain one of this driver's guests?"""
        return (self.instances_path / uuid).is_dir()

    def _on_libvirt_event(self, uuid: str, event: int, detail: int) -> None:
        """Runs on the loop: forward power changes of our own guests to the manager."""
        lifecycle = lifecycle_event(uuid, event, detail)
        callback = self._event_callback
        if lifecycle is not None and callback is not None:
            callback(lifecycle)
