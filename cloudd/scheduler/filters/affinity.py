"""Placement relative to other instances: Same/DifferentHost hints and server group policies."""

from __future__ import annotations

from cloudd.scheduler.filters.base import BaseHostFilter, HostPredicate
from cloudd.scheduler.host_state import HostState
from cloudd.scheduler.request import RequestSpec


class SameHostFilter(BaseHostFilter):
    """With hint same_host=[uuids]: pass hosts running at least one of those instances."""

    name = "SameHostFilter"

    def prepare(self, spec: RequestSpec) -> HostPredicate | None:
        affinity_uuids = frozenset(spec.scheduler_hints.same_host)
        if not affinity_uuids:
            return None

        def runs_one_of_them(host: HostState) -> bool:
            return not affinity_uuids.isdisjoint(host.instance_uuids)

        return runs_one_of_them


class DifferentHostFilter(BaseHostFilter):
    """With hint different_host=[uuids]: pass hosts running none of those instances."""

    name = "DifferentHostFilter"

    def prepare(self, spec: RequestSpec) -> HostPredicate | None:
        anti_affinity_uuids = frozenset(spec.scheduler_hints.different_host)
        if not anti_affinity_uuids:
            return None

        def runs_none_of_them(host: HostState) -> bool:
            return anti_affinity_uuids.isdisjoint(host.instance_uuids)

        return runs_none_of_them


class ServerGroupAffinityFilter(BaseHostFilter):
    """Group policy "affinity": once a member runs somewhere, only those hosts pass.

    The first instance of an empty group may go anywhere; the driver adds each chosen host to
    the group's hosts so the rest of a multi-instance request follows it.
    """

    name = "ServerGroupAffinityFilter"

    def prepare(self, spec: RequestSpec) -> HostPredicate | None:
        group = spec.instance_group
        if group is None or group.policy != "affinity" or not group.hosts:
            return None
        group_hosts = frozenset(group.hosts)

        def with_the_group(host: HostState) -> bool:
            return host.host in group_hosts

        return with_the_group


class ServerGroupAntiAffinityFilter(BaseHostFilter):
    """Group policy "anti-affinity": hosts already running a member do not pass."""

    name = "ServerGroupAntiAffinityFilter"

    def prepare(self, spec: RequestSpec) -> HostPredicate | None:
        group = spec.instance_group
        if group is None or group.policy != "anti-affinity" or not group.hosts:
            return None
        group_hosts = frozenset(group.hosts)

        def away_from_the_group(host: HostState) -> bool:
            return host.host not in group_hosts

        return away_from_the_group
