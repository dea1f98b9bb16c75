"""The compute manager's RPC contract: what the controller asks of a host's agent.

Called as ``compute.<name>`` on the agent that owns ``instance.host``. Long actions are casts
(the API answers 202 at once, as Nova does); the agent reports progress through the conductor.
Reads that the API must answer (console output, VNC address) are calls. The host's own reports
travel in the types below too: ``HostResources`` (registration and the periodic resource report,
``cloudd.rpc.contracts.conductor``), ``HostDomain`` (the host health ``cloudd manage status``
reads) and ``ImageInfo`` (what a build or rebuild carries of its images).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, StringConstraints

from cloudd.rpc.contracts.instance import FlavorSnapshot, Instance
from cloudd.rpc.contracts.network import Vif
from cloudd.rpc.link import RpcLink

PREFIX = "compute."
# What `cloudd manage status` asks each agent (served by cloudd.agent.health).
HOST_HEALTH_METHOD = PREFIX + "host_health"


class HostResources(BaseModel):
    """What one node offers (a row of ``compute_nodes``); usage is the resource tracker's job."""

    hypervisor_hostname: str
    hypervisor_type: str
    hypervisor_version: int
    vcpus: int
    memory_mb: int
    local_gb: int
    # Nova's cpu_info JSON (arch, model, vendor, topology, features): stored and shown as is,
    # and walked by key by the scheduler's capabilities filter, so it stays a free-form mapping.
    cpu_info: dict[str, Any] = Field(default_factory=dict)
    # (architecture, hypervisor type, vm mode), e.g. ("x86_64", "qemu", "hvm")
    supported_instances: list[tuple[str, str, str]] = Field(default_factory=list)
    host_ip: str | None = None


class ImageInfo(BaseModel):
    """A Glance image as the driver needs it; ``path`` is where the manager put the file locally."""

    id: str
    disk_format: str | None = None
    container_format: str | None = None
    size: int = 0
    properties: dict[str, str] = Field(default_factory=dict)  # Glance's: strings by key
    path: str | None = None


class HostDomain(BaseModel):
    """A domain on the host that is not this cloud's: reported, never touched."""

    name: str
    uuid: str
    active: bool
    cloud_id: str | None = None  # the other cloud's id; None: no cloud id in its metadata
    instances_path: str | None = None  # None (with cloud_id None): no cloudd metadata at all

    def owner(self) -> str:
        if self.cloud_id:
            return f"cloud {self.cloud_id}"
        if self.instances_path:
            return f"a cloudd of instances_path {self.instances_path} (from before cloud ids)"
        return "no cloudd metadata (not a cloudd domain)"


class BuildInstance(BaseModel):
    """Build one guest on ``node``. ``instance`` is the row as the controller has it."""

    instance: Instance
    node: str
    image: ImageInfo | None = None
    kernel: ImageInfo | None = None
    ramdisk: ImageInfo | None = None
    request_id: str
    # One entry per NIC, allocated by the controller.
    network_info: list[Vif] = Field(default_factory=list)


class InstanceAction(BaseModel):
    """An action on one guest; ``request_id`` names the instance action it belongs to."""

    uuid: str
    request_id: str = ""


class RebootInstance(InstanceAction):
    hard: bool = False


class RebuildInstance(InstanceAction):
    image: ImageInfo | None = None
    # Nova's rebuild option: keep the ephemeral disk (drivers that cannot, rebuild it anyway).
    preserve_ephemeral: bool = False


class ResizeInstance(InstanceAction):
    new_flavor: FlavorSnapshot


class SnapshotInstance(InstanceAction):
    image_id: str


class RescueInstance(InstanceAction):
    """Rescue: boot `image` with the guest's own disks attached after it."""

    image: ImageInfo


class ShelveInstance(SnapshotInstance):
    """Shelve: power off, snapshot into `image_id`, and with `offload` free the host at once
    (Nova's shelved_offload_time 0)."""

    offload: bool = False


class ConsoleOutputRequest(InstanceAction):
    length: int | None = None


class ConsoleOutput(BaseModel):
    output: str


class VncConsole(BaseModel):
    host: str
    port: int


# A host's answer is bounded like any other input from it: names, counts and lengths.
_DeviceName = Annotated[str, StringConstraints(max_length=64)]
_Counter = Annotated[int, Field(ge=-1, le=2**63 - 1)]


class CpuDiagnostics(BaseModel):
    id: _Counter | None = None
    time: _Counter | None = None  # nanoseconds of CPU time used
    utilisation: _Counter | None = None  # percent, where the hypervisor reports it


class NicDiagnostics(BaseModel):
    device: _DeviceName  # the host's tap (vnet0): the key prefix of the pre-2.48 format
    mac_address: Annotated[str, StringConstraints(pattern=r"^([0-9a-f]{2}:){5}[0-9a-f]{2}$")] | None = None
    rx_octets: _Counter | None = None
    rx_errors: _Counter | None = None
    rx_drop: _Counter | None = None
    rx_packets: _Counter | None = None
    rx_rate: _Counter | None = None
    tx_octets: _Counter | None = None
    tx_errors: _Counter | None = None
    tx_drop: _Counter | None = None
    tx_packets: _Counter | None = None
    tx_rate: _Counter | None = None


class DiskDiagnostics(BaseModel):
    device: _DeviceName  # the guest's target (vda): the key prefix of the pre-2.48 format
    read_bytes: _Counter | None = None
    read_requests: _Counter | None = None
    write_bytes: _Counter | None = None
    write_requests: _Counter | None = None
    errors_count: _Counter | None = None


class Diagnostics(BaseModel):
    """A running guest's counters (Nova's Diagnostics object, the 2.48 server diagnostics)."""

    state: Literal["pending", "running", "paused", "shutdown", "crashed", "suspended"]
    driver: Literal["libvirt"]
    hypervisor: _DeviceName | None = None
    hypervisor_os: _DeviceName | None = None
    config_drive: bool = False
    memory_max_mb: _Counter | None = None
    memory_used_mb: _Counter | None = None
    # The hypervisor's own memory counters (KiB), keyed as libvirt names them (actual, rss).
    memory_stats: dict[_DeviceName, _Counter] = Field(default_factory=dict, max_length=64)
    cpu_details: list[CpuDiagnostics] = Field(default_factory=list, max_length=1024)
    nic_details: list[NicDiagnostics] = Field(default_factory=list, max_length=64)
    disk_details: list[DiskDiagnostics] = Field(default_factory=list, max_length=64)


class HostQuery(BaseModel):
    """A read-only question about the host itself (no instance)."""


class HostUptime(BaseModel):
    uptime: str = Field(max_length=1024)  # `uptime`'s line, as Nova's hypervisor uptime shows


class GuestList(BaseModel):
    uuids: list[str]


class DhcpServer(BaseModel):
    """The dnsmasq of one network on this host."""

    network: str  # the network's label
    bridge: str
    pid: int | None  # None: not running
    log: str = ""  # dnsmasq's log file, where the reason is when it died


class HostHealthReport(BaseModel):
    host: str
    driver: str
    libvirt_uri: str = ""
    libvirt_reachable: bool | None = None  # None: not a libvirt host
    libvirt_error: str = ""
    guests: int | None = None  # None: the driver could not list them
    dhcp: list[DhcpServer] = Field(default_factory=list)
    # Why the host's last security-group rule set was refused (its guests are cut off), or "".
    firewall_error: str = ""
    antispoof_error: str = ""
    # What the agent's start checks would refuse now (cloudd.agent.hostcheck), one line each.
    host_problems: list[str] = Field(default_factory=list)
    # Domains of other clouds and of other programs on this host (never touched).
    unknown_domains: list[HostDomain] = Field(default_factory=list)
    # The agent process's own counts (cloudd.metrics): flat over a long run (`make soak`).
    asyncio_tasks: int | None = None
    gc_objects: int | None = None
    allocated_blocks: int | None = None


class ComputeClient:
    """The controller's typed handle on one host's agent: one method per ``compute.*`` method
    the agent serves (``cloudd.agent.compute.manager.ComputeManager``, and ``host_health`` from
    ``cloudd.agent.health``). The long actions are casts; the reads are calls. Errors are the
    agent's or the link's (``RpcConnectionLost``, ``RpcTimeout``)."""

    def __init__(self, link: RpcLink) -> None:
        self.link = link

    async def build_instance(self, args: BuildInstance) -> None:
        await self.link.cast(PREFIX + "build_instance", args)

    async def terminate_instance(self, args: InstanceAction) -> None:
        await self.link.cast(PREFIX + "terminate_instance", args)

    async def stop_instance(self, args: InstanceAction) -> None:
        await self.link.cast(PREFIX + "stop_instance", args)

    async def soft_delete_instance(self, args: InstanceAction) -> None:
        await self.link.cast(PREFIX + "soft_delete_instance", args)

    async def restore_instance(self, args: InstanceAction) -> None:
        await self.link.cast(PREFIX + "restore_instance", args)

    async def start_instance(self, args: InstanceAction) -> None:
        await self.link.cast(PREFIX + "start_instance", args)

    async def reboot_instance(self, args: RebootInstance) -> None:
        await self.link.cast(PREFIX + "reboot_instance", args)

    async def pause_instance(self, args: InstanceAction) -> None:
        await self.link.cast(PREFIX + "pause_instance", args)

    async def unpause_instance(self, args: InstanceAction) -> None:
        await self.link.cast(PREFIX + "unpause_instance", args)

    async def suspend_instance(self, args: InstanceAction) -> None:
        await self.link.cast(PREFIX + "suspend_instance", args)

    async def resume_instance(self, args: InstanceAction) -> None:
        await self.link.cast(PREFIX + "resume_instance", args)

    async def rebuild_instance(self, args: RebuildInstance) -> None:
        await self.link.cast(PREFIX + "rebuild_instance", args)

    async def resize_instance(self, args: ResizeInstance) -> None:
        await self.link.cast(PREFIX + "resize_instance", args)

    async def confirm_resize(self, args: InstanceAction) -> None:
        await self.link.cast(PREFIX + "confirm_resize", args)

    async def revert_resize(self, args: InstanceAction) -> None:
        await self.link.cast(PREFIX + "revert_resize", args)

    async def snapshot_instance(self, args: SnapshotInstance) -> None:
        await self.link.cast(PREFIX + "snapshot_instance", args)

    async def rescue_instance(self, args: RescueInstance) -> None:
        await self.link.cast(PREFIX + "rescue_instance", args)

    async def unrescue_instance(self, args: InstanceAction) -> None:
        await self.link.cast(PREFIX + "unrescue_instance", args)

    async def shelve_instance(self, args: ShelveInstance) -> None:
        await self.link.cast(PREFIX + "shelve_instance", args)

    async def shelve_offload_instance(self, args: InstanceAction) -> None:
        await self.link.cast(PREFIX + "shelve_offload_instance", args)

    async def unshelve_instance(self, args: InstanceAction) -> None:
        """A shelved (not offloaded) guest on its host powered on again."""
        await self.link.cast(PREFIX + "unshelve_instance", args)

    async def trigger_crash_dump(self, args: InstanceAction) -> None:
        await self.link.cast(PREFIX + "trigger_crash_dump", args)

    async def get_console_output(self, args: ConsoleOutputRequest) -> ConsoleOutput:
        return await self.link.call(PREFIX + "get_console_output", args, ConsoleOutput)

    async def get_host_uptime(self, args: HostQuery) -> HostUptime:
        return await self.link.call(PREFIX + "get_host_uptime", args, HostUptime)

    async def get_diagnostics(self, args: InstanceAction) -> Diagnostics:
        return await self.link.call(PREFIX + "get_diagnostics", args, Diagnostics)

    async def get_vnc_console(self, args: InstanceAction) -> VncConsole:
        return await self.link.call(PREFIX + "get_vnc_console", args, VncConsole)

    async def list_guests(self, args: HostQuery) -> GuestList:
        return await self.link.call(PREFIX + "list_guests", args, GuestList)

    async def host_health(self, args: HostQuery, timeout: float | None = None) -> HostHealthReport:  # noqa: ASYNC109
        return await self.link.call(HOST_HEALTH_METHOD, args, HostHealthReport, timeout=timeout)
