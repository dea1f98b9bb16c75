"""The hypervisor driver interface the compute manager calls (Nova's ``nova/virt/driver.py``).

One driver object per agent. Every method is a coroutine; a driver whose library blocks (libvirt)
runs those calls in a thread itself, so the manager never has to care. Guests are named by the
instance uuid everywhere; ``GuestSpec.name`` ("instance-0000002a") is only the hypervisor's label.

Power-state contract (both drivers follow it, the fake driver enforces it strictly):

| method        | from                                   | to        |
|---------------|----------------------------------------|-----------|
| spawn         | (absent)                               | RUNNING   |
| reboot soft   | RUNNING                                | RUNNING   |
| reboot hard   | any                                    | RUNNING   |
| power_off     | any (no-op when SHUTDOWN)              | SHUTDOWN  |
| power_on      | SHUTDOWN, CRASHED (no-op when RUNNING) | RUNNING   |
| pause         | RUNNING                                | PAUSED    |
| unpause       | PAUSED                                 | RUNNING   |
| suspend       | RUNNING                                | SUSPENDED |
| resume        | SUSPENDED                              | RUNNING   |
| rebuild       | RUNNING, SHUTDOWN, CRASHED             | RUNNING   |
| resize        | RUNNING, SHUTDOWN, CRASHED             | RUNNING if power_on else SHUTDOWN |
| revert_resize | (resize pending)                       | RUNNING if power_on else SHUTDOWN |
| destroy       | any, or absent                         | absent    |

Anything else raises ``InvalidState``; an unknown uuid raises ``InstanceNotFound``.
"""

from __future__ import annotations

import abc
import asyncio
import importlib
import os
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, Field

from cloudd.rpc.contracts.compute import Diagnostics, HostDomain, HostResources, ImageInfo
from cloudd.rpc.contracts.network import Vif


class DriverError(Exception):
    """Base of every error a driver raises; the message is safe to show as an instance fault."""


class InstanceNotFound(DriverError):
    """The hypervisor has no guest with this uuid."""

    def __init__(self, uuid: str) -> None:
        super().__init__(f"instance {uuid} not found on this hypervisor")
        self.uuid = uuid


class InvalidState(DriverError):
    """The guest's power state does not allow the operation (e.g. pausing a stopped guest)."""


class BuildFailed(DriverError):
    """spawn() failed and left nothing behind; the manager may reschedule to another host."""


class GuestSpec(BaseModel):
    """Everything needed to build one guest: the instance, its flavor, image and network."""

    uuid: str
    name: str  # hypervisor label (domain name), fixed at create: cloudd.vocab.instance_name
    vcpus: int
    memory_mb: int
    root_gb: int
    ephemeral_gb: int = 0
    swap_mb: int = 0
    image: ImageInfo | None = None
    kernel: ImageInfo | None = None
    ramdisk: ImageInfo | None = None
    network_info: list[Vif] = Field(default_factory=list)
    user_data: str | None = None
    key_data: str | None = None
    hostname: str = ""
    metadata: dict[str, Any] = Field(default_factory=dict)


class GuestInfo(BaseModel):
    """A guest as the hypervisor reports it now (Nova's ``InstanceInfo``)."""

    uuid: str
    power_state: int
    # Current allocation; lets a caller see which flavor a resized guest is running with.
    vcpus: int = 0
    memory_mb: int = 0


class VncAddress(BaseModel):
    """Where the guest's VNC server listens, for the console proxy to connect to."""

    host: str
    port: int


class LifecycleEvent(BaseModel):
    """A guest changed power state; the manager runs its power-state sync for that uuid."""

    uuid: str
    power_state: int
    reason: str = ""


EventCallback = Callable[[LifecycleEvent], None]


class ComputeDriver(abc.ABC):
    """A hypervisor as the compute manager sees it. See the module docstring for state rules."""

    @abc.abstractmethod
    async def init_host(self, host: str) -> None:
        """Connect to the hypervisor; ``host`` is this agent's service host name."""

    @abc.abstractmethod
    async def cleanup_host(self) -> None:
        """Disconnect on agent shutdown. Guests keep running, as they would on a real host."""

    @abc.abstractmethod
    async def get_available_resource(self, nodename: str) -> HostResources:
        """Totals for one node from ``get_available_nodes()``; unknown node -> DriverError."""

    @abc.abstractmethod
    async def get_available_nodes(self) -> list[str]:
        """Node names (``compute_nodes.hypervisor_hostname``) this agent serves."""

    @abc.abstractmethod
    async def list_instances(self) -> list[str]:
        """Uuids of every guest defined on this host, whatever its power state."""

    @abc.abstractmethod
    async def get_info(self, uuid: str) -> GuestInfo:
        """The guest's current state; raises InstanceNotFound."""

    @abc.abstractmethod
    async def spawn(self, spec: GuestSpec, node: str) -> None:
        """Create and boot the guest on ``node``; on failure raise BuildFailed, leaving nothing.

        If the guest is destroyed while spawn is still running, spawn raises InstanceNotFound
        (Nova: "instance disappeared during build"; the manager must not reschedule it).
        """

    @abc.abstractmethod
    async def destroy(self, uuid: str) -> None:
        """Stop the guest and remove it and all its files; no error if it is already gone."""

    @abc.abstractmethod
    async def reboot(self, uuid: str, hard: bool) -> None:
        """Soft reboot needs a running guest; hard reboot brings up a guest from any state."""

    @abc.abstractmethod
    async def power_off(self, uuid: str) -> None:
        """Stop the guest, keeping its disks."""

    @abc.abstractmethod
    async def power_on(self, uuid: str) -> None:
        """Boot a stopped or crashed guest."""

    @abc.abstractmethod
    async def pause(self, uuid: str) -> None:
        """Freeze the guest's vCPUs in memory."""

    @abc.abstractmethod
    async def unpause(self, uuid: str) -> None:
        """Resume a paused guest."""

    @abc.abstractmethod
    async def suspend(self, uuid: str) -> None:
        """Save the guest's memory to disk and stop it."""

    @abc.abstractmethod
    async def resume(self, uuid: str) -> None:
        """Restore a suspended guest."""

    @abc.abstractmethod
    async def rebuild(self, spec: GuestSpec) -> None:
        """Re-create the guest ``spec.uuid`` from ``spec.image`` (new root disk), then boot it."""

    @abc.abstractmethod
    async def resize(self, uuid: str, new_spec: GuestSpec, power_on: bool = True) -> None:
        """Cold resize: stop the guest, prepare ``new_spec``'s size keeping the old one for
        revert, then boot it at the new size if ``power_on`` (Nova's ``finish_migration``)."""

    @abc.abstractmethod
    async def confirm_resize(self, uuid: str) -> None:
        """Drop the old size kept by resize(); InvalidState if no resize is pending."""

    @abc.abstractmethod
    async def revert_resize(self, uuid: str, power_on: bool = True) -> None:
        """Throw away the new size and go back to the old one; InvalidState if none pending."""

    @abc.abstractmethod
    async def rescue(self, uuid: str, image: ImageInfo) -> None:
        """Nova's rescue: stop the guest, boot `image` (a fresh disk of it, the first disk)
        with the guest's own disks attached after it; InvalidState if it is in rescue."""

    @abc.abstractmethod
    async def unrescue(self, uuid: str) -> None:
        """Back to the guest's own disks and definition, booted; InvalidState if not in rescue."""

    @abc.abstractmethod
    async def snapshot(self, uuid: str, dest_path: str) -> None:
        """Write the guest's root disk as an image file at ``dest_path``."""

    @abc.abstractmethod
    async def inject_nmi(self, uuid: str) -> None:
        """A non-maskable interrupt to a running guest (Nova's trigger_crash_dump): a kernel
        set up for it (kdump) dumps its memory and reboots; InvalidState if not running."""

    @abc.abstractmethod
    async def get_console_output(self, uuid: str) -> str:
        """The guest's serial console log so far."""

    @abc.abstractmethod
    async def get_diagnostics(self, uuid: str) -> Diagnostics:
        """A running guest's CPU, memory, disk and NIC counters; InvalidState if it is not
        running (Nova answers diagnostics of running guests only)."""

    @abc.abstractmethod
    async def get_vnc_console(self, uuid: str) -> VncAddress:
        """Where the guest's VNC server listens; InvalidState if the guest has no running VM."""

    @abc.abstractmethod
    async def set_event_callback(self, callback: EventCallback) -> None:
        """Register the receiver of LifecycleEvents (replaces any earlier one).

        The callback runs on the event loop thread and must not block. A driver may also report
        changes the manager itself caused (libvirt does), so the manager must tolerate them.
        """

    async def set_cloud_id(self, cloud_id: str) -> None:
        """The cloud this agent registered with: the driver marks its guests with it and knows
        them by it (a driver without host-wide domains, the fake one, only keeps it)."""
        self.cloud_id = cloud_id

    async def unknown_domains(self) -> list[HostDomain]:
        """Domains on the host that belong to another cloud or to no cloud (never touched)."""
        return []

    async def get_host_uptime(self) -> str:
        """`uptime`'s line for this host (Nova's libvirt driver runs it too; the fake driver's
        host is a real machine as well)."""
        process = await asyncio.create_subprocess_exec(
            "uptime", env={**os.environ, "LANG": "C"}, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL)
        try:
            async with asyncio.timeout(10):
                out, _ = await process.communicate()
        except TimeoutError:
            process.kill()
            await process.wait()
            raise DriverError("uptime did not answer") from None
        if process.returncode != 0:
            raise DriverError(f"uptime exited {process.returncode}")
        return out.decode(errors="replace").strip()[:1024]

    async def instance_exists(self, uuid: str) -> bool:
        """True when the hypervisor knows the guest (Nova's ``instance_exists``)."""
        try:
            await self.get_info(uuid)
        except InstanceNotFound:
            return False
        return True


# Driver names as written in the agent's config -> "module:class", imported only when chosen so
# that the fake driver works on machines without libvirt-python.
_DRIVERS: dict[str, str] = {
    "fake": "cloudd.agent.compute.drivers.fake:FakeDriver",
    "libvirt": "cloudd.agent.compute.drivers.libvirt:LibvirtDriver",
}


def load_driver(name: str, config: dict[str, Any]) -> ComputeDriver:
    """Build the driver called ``name``, passing ``config`` as keyword arguments."""
    target = _DRIVERS.get(name)
    if target is None:
        raise DriverError(f"unknown compute driver {name!r}; known: {', '.join(sorted(_DRIVERS))}")
    module_name, class_name = target.split(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise DriverError(f"compute driver {name!r} is not available: {exc}") from exc
    driver_class = getattr(module, class_name)
    try:
        driver: ComputeDriver = driver_class(**config)
    except TypeError as exc:  # an option the driver does not take, or one missing
        raise DriverError(f"bad configuration for compute driver {name!r}: {exc}") from exc
    return driver
