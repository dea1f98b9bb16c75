"""The scheduler's in-memory view of one compute node (Nova's `HostState`)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from cloudd.scheduler.request import RequestSpec

SupportedInstance = tuple[str, str, str]  # (architecture, hypervisor_type, vm_mode)


def _decode_json(value: Any, default: Any) -> Any:
    """compute_nodes stores JSON as TEXT; accept already-decoded values too."""
    if value is None or value == "":
        return default
    if isinstance(value, str | bytes):
        return json.loads(value)
    return value


@dataclass(slots=True)
class HostState:
    """Capacity and identity of one compute node, mutated by `consume` between picks.

    The free_* fields are what filters and weighers read; the *_used fields are kept in step
    so a caller can write them back or log them.
    """

    host: str
    nodename: str
    uuid: str = ""
    availability_zone: str = "nova"
    hypervisor_type: str = ""
    hypervisor_version: int = 0
    supported_instances: list[SupportedInstance] = field(default_factory=list)
    cpu_info: dict[str, Any] = field(default_factory=dict)
    vcpus_total: int = 0
    vcpus_used: int = 0
    memory_mb_total: int = 0
    memory_mb_used: int = 0
    free_ram_mb: int = 0
    local_gb_total: int = 0
    local_gb_used: int = 0
    free_disk_mb: int = 0
    num_instances: int = 0
    cpu_allocation_ratio: float = 16.0
    ram_allocation_ratio: float = 1.5
    disk_allocation_ratio: float = 1.0
    service_up: bool = True
    service_disabled: bool = False
    instance_uuids: set[str] = field(default_factory=set)

    @classmethod
    def from_row(
        cls,
        node_row: dict[str, Any],
        service_up: bool,
        service_disabled: bool,
        instance_uuids: set[str],
    ) -> HostState:
        """Build from a `compute_nodes` row.

        Like Nova's resource tracker, `memory_mb_used` is expected to already include
        `reserved_host_memory_mb`, so free RAM is simply total - used.
        """
        memory_mb = int(node_row["memory_mb"])
        memory_mb_used = int(node_row.get("memory_mb_used") or 0)
        local_gb = int(node_row["local_gb"])
        local_gb_used = int(node_row.get("local_gb_used") or 0)
        raw_supported = _decode_json(node_row.get("supported_instances"), [])
        return cls(
            host=node_row["host"],
            nodename=node_row["hypervisor_hostname"],
            uuid=node_row.get("uuid") or "",
            availability_zone=node_row.get("availability_zone") or "nova",
            hypervisor_type=node_row.get("hypervisor_type") or "",
            hypervisor_version=int(node_row.get("hypervisor_version") or 0),
            supported_instances=[
                (str(arch), str(hv_type), str(vm_mode))
                for arch, hv_type, vm_mode in raw_supported
            ],
            cpu_info=_decode_json(node_row.get("cpu_info"), {}),
            vcpus_total=int(node_row["vcpus"]),
            vcpus_used=int(node_row.get("vcpus_used") or 0),
            memory_mb_total=memory_mb,
            memory_mb_used=memory_mb_used,
            free_ram_mb=memory_mb - memory_mb_used,
            local_gb_total=local_gb,
            local_gb_used=local_gb_used,
            free_disk_mb=(local_gb - local_gb_used) * 1024,
            num_instances=int(node_row.get("running_vms") or 0),
            cpu_allocation_ratio=float(node_row.get("cpu_allocation_ratio") or 16.0),
            ram_allocation_ratio=float(node_row.get("ram_allocation_ratio") or 1.5),
            disk_allocation_ratio=float(node_row.get("disk_allocation_ratio") or 1.0),
            service_up=service_up,
            service_disabled=service_disabled,
            instance_uuids=set(instance_uuids),
        )

    def consume(self, request: RequestSpec, instance_uuid: str | None = None) -> None:
        """Account for one instance of `request` landing here (Nova's consume_from_instance)."""
        flavor = request.flavor
        self.memory_mb_used += flavor.memory_mb
        self.free_ram_mb -= flavor.memory_mb
        self.vcpus_used += flavor.vcpus
        self.local_gb_used += flavor.root_gb + flavor.ephemeral_gb
        self.free_disk_mb -= flavor.disk_mb
        self.num_instances += 1
        if instance_uuid is not None:
            self.instance_uuids.add(instance_uuid)

    def release(self, request: RequestSpec, instance_uuid: str | None = None) -> None:
        """Undo one `consume` (a multi-instance request that failed part way)."""
        flavor = request.flavor
        self.memory_mb_used -= flavor.memory_mb
        self.free_ram_mb += flavor.memory_mb
        self.vcpus_used -= flavor.vcpus
        self.local_gb_used -= flavor.root_gb + flavor.ephemeral_gb
        self.free_disk_mb += flavor.disk_mb
        self.num_instances -= 1
        if instance_uuid is not None:
            self.instance_uuids.discard(instance_uuid)

    @property
    def total_usable_disk_mb(self) -> int:
        return self.local_gb_total * 1024

    @property
    def vcpus_free(self) -> float:
        """vCPUs still available after overcommit, as CPUWeigher and CoreFilter see them."""
        return self.vcpus_total * self.cpu_allocation_ratio - self.vcpus_used
