"""Filters on the host's identity and service: Retry, AvailabilityZone, Compute, NumInstances."""

from __future__ import annotations

from cloudd.scheduler.filters.base import BaseHostFilter, HostPredicate
from cloudd.scheduler.host_state import HostState
from cloudd.scheduler.request import RequestSpec


class RetryFilter(BaseHostFilter):
    """Skip hosts that already failed to spawn this request (retry['hosts'])."""

    name = "RetryFilter"

    def prepare(self, spec: RequestSpec) -> HostPredicate | None:
        tried_hosts = frozenset(spec.retry.hosts)
        if not tried_hosts:
            return None

        def not_tried(host: HostState) -> bool:
            # Entries are host or node names: one agent may present many simulated nodes.
            return host.host not in tried_hosts and host.nodename not in tried_hosts

        return not_tried


class AvailabilityZoneFilter(BaseHostFilter):
    """Keep hosts in the requested availability zone; no zone asked -> every host passes."""

    name = "AvailabilityZoneFilter"

    def prepare(self, spec: RequestSpec) -> HostPredicate | None:
        zone = spec.availability_zone
        if not zone:
            return None

        def in_zone(host: HostState) -> bool:
            return host.availability_zone == zone

        return in_zone


class ComputeFilter(BaseHostFilter):
    """Keep hosts whose nova-compute service is up (recent heartbeat) and not disabled."""

    name = "ComputeFilter"

    def prepare(self, spec: RequestSpec) -> HostPredicate | None:
        return _service_usable


def _service_usable(host: HostState) -> bool:
    return host.service_up and not host.service_disabled


class NumInstancesFilter(BaseHostFilter):
    """Keep hosts running fewer than `max_instances_per_host` instances."""

    name = "NumInstancesFilter"

    def prepare(self, spec: RequestSpec) -> HostPredicate | None:
        max_instances = self.config.max_instances_per_host

        def has_room(host: HostState) -> bool:
            return host.num_instances < max_instances

        return has_room
