"""An in-memory hypervisor for tests and scale simulation (Nova's ``nova/virt/fake.py``).

Guests are small records with real power-state transitions (see ``base`` for the table), so
one agent can carry thousands of them. ``delays`` slows chosen operations down (asyncio.sleep)
and ``fail`` makes chosen operations fail, to exercise the manager's timeouts, retries and
reschedules. ``crash``/``power_off_behind_back``/``power_on_behind_back`` change a guest's
state the way a real guest would on its own, and report it through the event callback.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import struct
import time
from collections import deque
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path

from cloudd.agent.compute.drivers.base import (
    BuildFailed,
    ComputeDriver,
    DriverError,
    EventCallback,
    GuestInfo,
    GuestSpec,
    InstanceNotFound,
    InvalidState,
    LifecycleEvent,
    VncAddress,
)
from cloudd.rpc.contracts.compute import (
    CpuDiagnostics,
    Diagnostics,
    DiskDiagnostics,
    HostResources,
    ImageInfo,
    NicDiagnostics,
)
from cloudd.vocab import power_state

# Names accepted as keys of ``delays`` and ``fail``: the driver methods that do guest work.
OPERATIONS = frozenset(
    "spawn destroy reboot power_off power_on pause unpause suspend resume rebuild"
    " resize confirm_resize revert_resize snapshot get_console_output inject_nmi".split()
)

_ANY_STATE = frozenset(power_state.STATE_MAP)
_STOPPED = frozenset({power_state.SHUTDOWN, power_state.CRASHED})
# States from which a guest can be rebuilt or resized (Nova's API allows active and stopped).
_REBUILDABLE = frozenset({power_state.RUNNING}) | _STOPPED
# States in which a QEMU process exists and so a VNC server listens.
_HAS_VNC = frozenset({power_state.RUNNING, power_state.PAUSED})
_VNC_BASE_PORT = 5900
_VNC_PORT_RANGE = 1000  # within [vnc] vncserver_port_min..max however many guests come and go
# A snapshot is a qcow2 image (what the libvirt driver uploads, and what the controller's
# image inspector checks it is): a qcow2 v3 header of a 1 GiB disk with no backing file, no data
# file and no features, padded to the 512 bytes the inspector reads; the fake's text follows.
_QCOW2_HEADER = struct.pack(">4sIQIIQIIQQIIQQQQII", b"QFI\xfb", 3, 0, 0, 16, 1 << 30,
                            0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4, 104).ljust(512, b"\0")

# A failure rule: a probability in [0, 1], or a set of instance uuids and/or node names.
FailureRule = float | Collection[str]


@dataclass(slots=True)
class _FakeGuest:
    spec: GuestSpec
    node: str
    vnc_port: int
    console: deque[str]
    power_state: int = power_state.NOSTATE
    pre_resize_spec: GuestSpec | None = None  # kept by resize() until confirm or revert
    rescue_image: str | None = None  # the image rescue() booted, until unrescue()
    snapshots_taken: int = 0
    nmis_injected: int = 0  # trigger_crash_dump's NMIs, for tests to read
    created: float = field(default_factory=time.monotonic)  # its CPU time in diagnostics


class FakeDriver(ComputeDriver):
    """See the module docstring. Every argument may come from a config file as a string."""

    def __init__(
        self,
        host_count: int = 1,
        vcpus: int = 16,
        memory_mb: int = 32768,
        local_gb: int = 500,
        delays: dict[str, float] | None = None,
        fail: dict[str, FailureRule] | None = None,
        hypervisor_type: str = "fake",
        hypervisor_version: int = 1000,
        host_ip: str | None = "127.0.0.1",
        vnc_listen: str = "127.0.0.1",
        console_lines: int = 100,
        seed: int | None = None,
    ) -> None:
        self.host_count = int(host_count)
        if self.host_count < 1:
            raise DriverError(f"host_count must be at least 1, got {host_count}")
        self.vcpus = int(vcpus)
        self.memory_mb = int(memory_mb)
        self.local_gb = int(local_gb)
        self.delays = {op: float(seconds) for op, seconds in (delays or {}).items()}
        self.fail: dict[str, FailureRule] = dict(fail or {})
        unknown = (set(self.delays) | set(self.fail)) - OPERATIONS
        if unknown:
            raise DriverError(f"unknown fake driver operations: {', '.join(sorted(unknown))}")
        self.hypervisor_type = hypervisor_type
        self.hypervisor_version = int(hypervisor_version)
        self.host_ip = host_ip
        self.vnc_listen = vnc_listen
        self.console_lines = int(console_lines)
        self._random = random.Random(seed)
        self._host: str | None = None
        self._guests: dict[str, _FakeGuest] = {}
        # uuids whose spawn is in progress; destroy() removes them to abort the build.
        self._building: set[str] = set()
        self._vnc_counter = itertools.count()
        self._event_callback: EventCallback | None = None

    # -- host ------------------------------------------------------------------------------

    async def init_host(self, host: str) -> None:
        self._host = host

    async def cleanup_host(self) -> None:
        # Guests stay, as on a real host whose agent stops; a later init_host sees them again.
        self._host = None
        self._event_callback = None

    async def get_available_nodes(self) -> list[str]:
        return self._nodes()

    async def get_available_resource(self, nodename: str) -> HostResources:
        if nodename not in self._nodes():
            raise DriverError(f"node {nodename!r} is not served by this fake driver")
        return HostResources(
            hypervisor_hostname=nodename,
            hypervisor_type=self.hypervisor_type,
            hypervisor_version=self.hypervisor_version,
            vcpus=self.vcpus,
            memory_mb=self.memory_mb,
            local_gb=self.local_gb,
            cpu_info={
                "arch": "x86_64",
                "model": "fake",
                "vendor": "cloudd",
                "topology": {"sockets": 1, "cores": self.vcpus, "threads": 1},
                "features": [],
            },
            supported_instances=[("x86_64", self.hypervisor_type, "hvm")],
            host_ip=self.host_ip,
        )

    async def list_instances(self) -> list[str]:
        return list(self._guests)

    async def get_info(self, uuid: str) -> GuestInfo:
        guest = self._guest(uuid)
        return GuestInfo(
            uuid=uuid,
            power_state=guest.power_state,
            vcpus=guest.spec.vcpus,
            memory_mb=guest.spec.memory_mb,
        )

    async def set_event_callback(self, callback: EventCallback) -> None:
        self._event_callback = callback

    # -- guest lifecycle -------------------------------------------------------------------

    async def spawn(self, spec: GuestSpec, node: str) -> None:
        if node not in self._nodes():
            raise BuildFailed(f"node {node!r} is not served by this fake driver")
        if spec.uuid in self._guests or spec.uuid in self._building:
            raise InvalidState(f"instance {spec.uuid} already exists on this hypervisor")
        self._building.add(spec.uuid)
        try:
            await self._delay("spawn")
            if spec.uuid not in self._building:  # destroy() ran while we were building
                raise InstanceNotFound(spec.uuid)
            if self._should_fail("spawn", spec.uuid, node):
                raise BuildFailed(f"injected spawn failure for {spec.uuid} on {node}")
        finally:
            self._building.discard(spec.uuid)
        port = _VNC_BASE_PORT + next(self._vnc_counter) % _VNC_PORT_RANGE
        guest = _FakeGuest(
            spec=spec, node=node, vnc_port=port, console=deque(maxlen=self.console_lines)
        )
        self._guests[spec.uuid] = guest
        self._boot(guest)

    async def destroy(self, uuid: str) -> None:
        self._building.discard(uuid)
        await self._delay("destroy")
        if self._should_fail("destroy", uuid, None):
            raise DriverError(f"injected destroy failure for {uuid}")
        self._guests.pop(uuid, None)

    async def reboot(self, uuid: str, hard: bool) -> None:
        allowed = _ANY_STATE if hard else frozenset({power_state.RUNNING})
        guest = await self._begin("reboot", uuid, allowed)
        guest.console.append(f"fake guest {uuid} {'reset' if hard else 'rebooting'}")
        self._boot(guest)

    async def power_off(self, uuid: str) -> None:
        guest = await self._begin("power_off", uuid, _ANY_STATE)
        if guest.power_state != power_state.SHUTDOWN:
            guest.console.append(f"fake guest {uuid} powered off")
            guest.power_state = power_state.SHUTDOWN

    async def power_on(self, uuid: str) -> None:
        guest = await self._begin("power_on", uuid, _STOPPED | {power_state.RUNNING})
        if guest.power_state != power_state.RUNNING:
            self._boot(guest)

    async def pause(self, uuid: str) -> None:
        guest = await self._begin("pause", uuid, frozenset({power_state.RUNNING}))
        guest.power_state = power_state.PAUSED

    async def unpause(self, uuid: str) -> None:
        guest = await self._begin("unpause", uuid, frozenset({power_state.PAUSED}))
        guest.power_state = power_state.RUNNING

    async def suspend(self, uuid: str) -> None:
        guest = await self._begin("suspend", uuid, frozenset({power_state.RUNNING}))
        guest.power_state = power_state.SUSPENDED

    async def resume(self, uuid: str) -> None:
        guest = await self._begin("resume", uuid, frozenset({power_state.SUSPENDED}))
        guest.power_state = power_state.RUNNING

    async def rebuild(self, spec: GuestSpec) -> None:
        guest = await self._begin("rebuild", spec.uuid, _REBUILDABLE)
        self._refuse_if_resizing(guest)
        guest.spec = spec
        image_id = spec.image.id if spec.image else "none"
        guest.console.append(f"fake guest {spec.uuid} rebuilt from image {image_id}")
        self._boot(guest)

    # -- resize ----------------------------------------------------------------------------

    async def resize(self, uuid: str, new_spec: GuestSpec, power_on: bool = True) -> None:
        if new_spec.uuid != uuid:
            raise DriverError(f"resize of {uuid} given a spec for {new_spec.uuid}")
        guest = await self._begin("resize", uuid, _REBUILDABLE)
        self._refuse_if_resizing(guest)
        guest.pre_resize_spec = guest.spec
        guest.spec = new_spec
        guest.power_state = power_state.SHUTDOWN
        guest.console.append(
            f"fake guest {uuid} resized to {new_spec.vcpus} vcpus, {new_spec.memory_mb} MB"
        )
        if power_on:
            self._boot(guest)

    async def confirm_resize(self, uuid: str) -> None:
        guest = await self._begin("confirm_resize", uuid, _ANY_STATE)
        self._require_resizing(guest)
        guest.pre_resize_spec = None

    async def revert_resize(self, uuid: str, power_on: bool = True) -> None:
        guest = await self._begin("revert_resize", uuid, _ANY_STATE)
        guest.spec = self._require_resizing(guest)
        guest.pre_resize_spec = None
        guest.power_state = power_state.SHUTDOWN
        guest.console.append(f"fake guest {uuid} resize reverted")
        if power_on:
            self._boot(guest)

    # -- rescue ----------------------------------------------------------------------------

    async def rescue(self, uuid: str, image: ImageInfo) -> None:
        guest = await self._begin("rescue", uuid, _REBUILDABLE)
        self._refuse_if_resizing(guest)
        if guest.rescue_image is not None:
            raise InvalidState(f"instance {uuid} is in rescue already")
        guest.rescue_image = image.id
        guest.power_state = power_state.SHUTDOWN
        guest.console.append(f"fake guest {uuid} rescued with image {image.id}")
        self._boot(guest)

    async def unrescue(self, uuid: str) -> None:
        guest = await self._begin("unrescue", uuid, _ANY_STATE)
        if guest.rescue_image is None:
            raise InvalidState(f"instance {uuid} is not in rescue")
        guest.rescue_image = None
        guest.power_state = power_state.SHUTDOWN
        guest.console.append(f"fake guest {uuid} unrescued")
        self._boot(guest)

    def rescue_image(self, uuid: str) -> str | None:
        """The image a rescued guest booted (None: not in rescue), for tests to read."""
        return self._guest(uuid).rescue_image

    # -- images and consoles ---------------------------------------------------------------

    async def snapshot(self, uuid: str, dest_path: str) -> None:
        guest = await self._begin("snapshot", uuid, _ANY_STATE)
        guest.snapshots_taken += 1
        image_id = guest.spec.image.id if guest.spec.image else ""
        content = _QCOW2_HEADER + (
            "cloudd fake disk image\n"
            f"instance={uuid}\nbase_image={image_id}\nroot_gb={guest.spec.root_gb}\n"
            f"snapshot={guest.snapshots_taken}\ntaken_at={time.time():.3f}\n"
        ).encode()
        try:
            await asyncio.to_thread(Path(dest_path).write_bytes, content)
        except OSError as exc:
            raise DriverError(f"cannot write snapshot of {uuid} to {dest_path}: {exc}") from exc

    async def inject_nmi(self, uuid: str) -> None:
        guest = await self._begin("inject_nmi", uuid,
                                  frozenset({power_state.RUNNING, power_state.PAUSED}))
        guest.nmis_injected += 1
        guest.console.append(f"fake guest {uuid} received an NMI")

    def nmis_injected(self, uuid: str) -> int:
        return self._guest(uuid).nmis_injected

    async def get_console_output(self, uuid: str) -> str:
        guest = self._guest(uuid)
        await self._delay("get_console_output")
        return "".join(line + "\n" for line in guest.console)

    async def get_diagnostics(self, uuid: str) -> Diagnostics:
        """Counters shaped as the libvirt driver's (Nova's fake driver also says "libvirt"):
        one vCPU each with the guest's age as CPU time, its NICs and disks with zero traffic."""
        guest = self._guest(uuid)
        if guest.power_state != power_state.RUNNING:
            raise InvalidState(f"instance {uuid} is {power_state.name(guest.power_state)}: "
                               "diagnostics are kept for running guests only")
        cpu_ns = int((time.monotonic() - guest.created) * 1e9)
        spec = guest.spec
        disks = ["vda"] + (["vdb"] if spec.ephemeral_gb else [])
        return Diagnostics(
            state="running", driver="libvirt", hypervisor=self.hypervisor_type,
            hypervisor_os="linux", memory_max_mb=spec.memory_mb, memory_used_mb=spec.memory_mb,
            memory_stats={"actual": spec.memory_mb * 1024},
            cpu_details=[CpuDiagnostics(id=n, time=cpu_ns) for n in range(spec.vcpus)],
            nic_details=[NicDiagnostics(device=vif.devname, mac_address=vif.mac, rx_octets=0,
                                        tx_octets=0) for vif in spec.network_info],
            disk_details=[DiskDiagnostics(device=name, read_bytes=0, write_bytes=0)
                          for name in disks])

    async def get_vnc_console(self, uuid: str) -> VncAddress:
        guest = self._guest(uuid)
        if guest.power_state not in _HAS_VNC:
            raise InvalidState(
                f"instance {uuid} is {power_state.name(guest.power_state)}: no VNC console"
            )
        return VncAddress(host=self.vnc_listen, port=guest.vnc_port)

    # -- test helpers: the guest acting on its own -----------------------------------------

    def crash(self, uuid: str) -> None:
        """The guest crashes (kernel panic, QEMU killed); reported as a lifecycle event."""
        self._change_behind_back(uuid, power_state.CRASHED, "guest crashed")

    def power_off_behind_back(self, uuid: str) -> None:
        """The guest shuts itself down (``poweroff`` inside the guest)."""
        self._change_behind_back(uuid, power_state.SHUTDOWN, "guest powered itself off")

    def power_on_behind_back(self, uuid: str) -> None:
        """Someone starts the guest outside cloudd (``virsh start``)."""
        self._change_behind_back(uuid, power_state.RUNNING, "guest started outside cloudd")

    # -- internals -------------------------------------------------------------------------

    def _nodes(self) -> list[str]:
        if self._host is None:
            raise DriverError("fake driver used before init_host()")
        if self.host_count == 1:
            return [self._host]
        return [f"{self._host}-{index}" for index in range(self.host_count)]

    def _guest(self, uuid: str) -> _FakeGuest:
        guest = self._guests.get(uuid)
        if guest is None:
            raise InstanceNotFound(uuid)
        return guest

    async def _delay(self, operation: str) -> None:
        seconds = self.delays.get(operation, 0.0)
        if seconds > 0:
            await asyncio.sleep(seconds)

    def _should_fail(self, operation: str, uuid: str, node: str | None) -> bool:
        rule = self.fail.get(operation)
        if rule is None:
            return False
        if isinstance(rule, int | float):
            return self._random.random() < rule
        if isinstance(rule, str):  # one name given bare, not a set of names
            return rule in (uuid, node)
        return uuid in rule or (node is not None and node in rule)

    async def _begin(self, operation: str, uuid: str, allowed: frozenset[int]) -> _FakeGuest:
        """Wait the operation's delay, then find the guest, check its state, inject failures.

        The lookup comes after the delay so a guest destroyed meanwhile is reported as gone.
        """
        await self._delay(operation)
        guest = self._guest(uuid)
        if guest.power_state not in allowed:
            raise InvalidState(
                f"cannot {operation} instance {uuid} while {power_state.name(guest.power_state)}"
            )
        if self._should_fail(operation, uuid, guest.node):
            raise DriverError(f"injected {operation} failure for {uuid}")
        return guest

    @staticmethod
    def _refuse_if_resizing(guest: _FakeGuest) -> None:
        if guest.pre_resize_spec is not None:
            raise InvalidState(f"instance {guest.spec.uuid} has a resize awaiting confirmation")

    @staticmethod
    def _require_resizing(guest: _FakeGuest) -> GuestSpec:
        if guest.pre_resize_spec is None:
            raise InvalidState(f"instance {guest.spec.uuid} has no resize to confirm or revert")
        return guest.pre_resize_spec

    def _boot(self, guest: _FakeGuest) -> None:
        guest.power_state = power_state.RUNNING
        guest.console.append(f"fake guest {guest.spec.uuid} booted")
        guest.console.append(f"{guest.spec.hostname or guest.spec.name} login:")

    def _change_behind_back(self, uuid: str, new_state: int, reason: str) -> None:
        guest = self._guest(uuid)
        guest.power_state = new_state
        guest.console.append(f"fake guest {uuid}: {reason}")
        if self._event_callback is not None:
            self._event_callback(LifecycleEvent(uuid=uuid, power_state=new_state, reason=reason))
