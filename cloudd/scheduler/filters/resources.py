"""Capacity filters with Nova's overcommit semantics: usable = total * ratio - used >= requested.

"used" is derived from the free_* fields (used = total - free) exactly like Nova, so a host whose
free value went negative through earlier overcommit is still judged against its limit.
"""

from __future__ import annotations

from cloudd.scheduler.filters.base import BaseHostFilter, HostPredicate
from cloudd.scheduler.host_state import HostState
from cloudd.scheduler.request import RequestSpec


class RamFilter(BaseHostFilter):
    """memory_mb_total * ram_allocation_ratio - used_ram_mb >= flavor.memory_mb."""

    name = "RamFilter"

    def prepare(self, spec: RequestSpec) -> HostPredicate | None:
        requested_ram_mb = spec.flavor.memory_mb

        def enough_ram(host: HostState) -> bool:
            total = host.memory_mb_total
            used = total - host.free_ram_mb
            return total * host.ram_allocation_ratio - used >= requested_ram_mb

        return enough_ram


class CoreFilter(BaseHostFilter):
    """vcpus_total * cpu_allocation_ratio - vcpus_used >= flavor.vcpus.

    A host reporting 0 vCPUs passes, as in Nova ("fail safe": the driver could not count).
    """

    name = "CoreFilter"

    def prepare(self, spec: RequestSpec) -> HostPredicate | None:
        requested_vcpus = spec.flavor.vcpus

        def enough_cores(host: HostState) -> bool:
            if not host.vcpus_total:
                return True
            return host.vcpus_total * host.cpu_allocation_ratio - host.vcpus_used >= requested_vcpus

        return enough_cores


class DiskFilter(BaseHostFilter):
    """local_gb_total*1024 * disk_allocation_ratio - used_disk_mb >= root+ephemeral+swap (MB)."""

    name = "DiskFilter"

    def prepare(self, spec: RequestSpec) -> HostPredicate | None:
        requested_disk_mb = spec.flavor.disk_mb

        def enough_disk(host: HostState) -> bool:
            total = host.local_gb_total * 1024
            used = total - host.free_disk_mb
            return total * host.disk_allocation_ratio - used >= requested_disk_mb

        return enough_disk
