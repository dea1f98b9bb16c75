"""Scheduler drivers: FilterScheduler (filter, weigh, pick) and ChanceScheduler (filter, pick any).

Both pick one host per requested instance and `consume` the chosen HostState in memory before
the next pick, so a multi-instance request sees its own earlier placements. If a later instance
cannot be placed, the earlier consumptions are released and NoValidHost is raised: a request is
placed whole or not at all.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Iterable, Sequence

from cloudd.scheduler.exceptions import NO_VALID_HOST, NoValidHost
from cloudd.scheduler.filters import DEFAULT_FILTERS, BaseHostFilter, FilterConfig, build_filters
from cloudd.scheduler.host_state import HostState
from cloudd.scheduler.request import RequestSpec
from cloudd.scheduler.weighers import BaseHostWeigher, build_weighers, weigh_hosts

NOT_ENOUGH_HOSTS = f"{NO_VALID_HOST} There are not enough hosts available."


class BaseScheduler:
    """Shared request loop: retries check, forced hosts, filtering with per-filter counts."""

    def __init__(
        self,
        filters: Sequence[BaseHostFilter],
        max_attempts: int = 3,
        rng: random.Random | None = None,
    ) -> None:
        self.filters = list(filters)
        self.max_attempts = max_attempts
        self.rng = rng or random.Random()

    def select_destinations(self, spec: RequestSpec, hosts: list[HostState]) -> list[HostState]:
        """One host per instance of `spec`, in instance order (a host may repeat)."""
        self._check_attempts(spec)
        forced = _forced_hosts(spec, hosts)
        # Picks made here join the server group, so later instances of the request see them;
        # work on a copy so the caller's spec is not changed.
        working_spec = spec.model_copy(deep=True) if spec.instance_group else spec
        chosen: list[HostState] = []
        try:
            for index in range(spec.num_instances):
                candidates = forced or self.filter_hosts(working_spec, hosts)
                host = self._choose(candidates, working_spec)
                host.consume(spec, spec.instance_uuid(index))
                chosen.append(host)
                if working_spec.instance_group is not None:
                    working_spec.instance_group.hosts.append(host.host)
        except NoValidHost:
            for index, host in enumerate(chosen):
                host.release(spec, spec.instance_uuid(index))
            raise
        return chosen

    def filter_hosts(self, spec: RequestSpec, hosts: list[HostState]) -> list[HostState]:
        """Run the filters in order; raise NoValidHost naming the counts if none survive."""
        if not hosts:
            raise NoValidHost(f"{NOT_ENOUGH_HOSTS} No compute nodes are known.")
        counts: list[tuple[str, int, int]] = []
        remaining = hosts
        for host_filter in self.filters:
            before = len(remaining)
            remaining = host_filter.filter_all(remaining, spec)
            counts.append((host_filter.name, before, len(remaining)))
            if not remaining:
                summary = ", ".join(f"{name} {start}->{end}" for name, start, end in counts)
                raise NoValidHost(f"{NOT_ENOUGH_HOSTS} Filters: {summary}", counts)
        return remaining

    def _check_attempts(self, spec: RequestSpec) -> None:
        if spec.retry.num_attempts > self.max_attempts:
            instance = spec.instance_uuid(0) or "(unnamed)"
            raise NoValidHost(
                f"Exceeded max scheduling attempts {self.max_attempts} for instance {instance}"
            )

    def _choose(self, candidates: list[HostState], spec: RequestSpec) -> HostState:
        raise NotImplementedError


def _forced_hosts(spec: RequestSpec, hosts: list[HostState]) -> list[HostState] | None:
    """Hosts named by force_hosts/force_nodes (filters are skipped for them, as in Nova).

    None when nothing is forced; NoValidHost when something is forced but matches no host.
    """
    if not spec.force_hosts and not spec.force_nodes:
        return None
    wanted_hosts = {name.lower() for name in spec.force_hosts}
    wanted_nodes = {name.lower() for name in spec.force_nodes}
    matched = [
        host
        for host in hosts
        if (not wanted_hosts or host.host.lower() in wanted_hosts)
        and (not wanted_nodes or host.nodename.lower() in wanted_nodes)
    ]
    if not matched:
        forced = ", ".join([*spec.force_hosts, *spec.force_nodes])
        raise NoValidHost(f"{NO_VALID_HOST} No compute host matches the forced host(s) {forced}.")
    return matched


class FilterScheduler(BaseScheduler):
    """Filter, weigh, then pick at random among the best `host_subset_size` hosts."""

    def __init__(
        self,
        filters: Sequence[BaseHostFilter],
        weighers: Sequence[BaseHostWeigher],
        host_subset_size: int = 1,
        max_attempts: int = 3,
        rng: random.Random | None = None,
    ) -> None:
        super().__init__(filters, max_attempts, rng)
        self.weighers = list(weighers)
        self.host_subset_size = max(1, host_subset_size)

    def _choose(self, candidates: list[HostState], spec: RequestSpec) -> HostState:
        if len(candidates) == 1:
            return candidates[0]
        weights = weigh_hosts(self.weighers, candidates, spec)
        if self.host_subset_size == 1:
            # max() keeps the first of equal weights, so ties go to the earliest host.
            best = max(range(len(candidates)), key=weights.__getitem__)
            return candidates[best]
        top = heapq.nlargest(self.host_subset_size, range(len(candidates)), key=weights.__getitem__)
        return candidates[self.rng.choice(top)]


class ChanceScheduler(BaseScheduler):
    """Pick uniformly at random among the hosts that pass the (few) filters."""

    def _choose(self, candidates: list[HostState], spec: RequestSpec) -> HostState:
        return candidates[int(self.rng.random() * len(candidates))]


# Nova's ChanceScheduler only took hosts whose service is up, minus hosts to ignore.
CHANCE_DEFAULT_FILTERS: tuple[str, ...] = ("RetryFilter", "ComputeFilter")

_DRIVER_ALIASES = {
    "filter": "filter",
    "filter_scheduler": "filter",
    "filterscheduler": "filter",
    "chance": "chance",
    "chance_scheduler": "chance",
    "chancescheduler": "chance",
}


def make_scheduler(
    driver_name: str = "filter_scheduler",
    filter_names: Iterable[str] | None = None,
    *,
    ram_weight_multiplier: float = 1.0,
    cpu_weight_multiplier: float = 1.0,
    disk_weight_multiplier: float = 1.0,
    host_subset_size: int = 1,
    max_attempts: int = 3,
    max_instances_per_host: int = 50,
    rng: random.Random | None = None,
) -> BaseScheduler:
    """Build a driver from configuration values; unknown names raise ValueError.

    `filter_names` None means the driver's defaults (DEFAULT_FILTERS, or CHANCE_DEFAULT_FILTERS).
    """
    kind = _DRIVER_ALIASES.get(driver_name.strip().lower().rsplit(".", 1)[-1])
    if kind is None:
        raise ValueError(
            f"unknown scheduler driver {driver_name!r}; use filter_scheduler or chance_scheduler"
        )
    config = FilterConfig(max_instances_per_host=max_instances_per_host)
    if kind == "chance":
        names = CHANCE_DEFAULT_FILTERS if filter_names is None else filter_names
        return ChanceScheduler(build_filters(names, config), max_attempts, rng)
    names = DEFAULT_FILTERS if filter_names is None else filter_names
    weighers = build_weighers(
        {
            "RAMWeigher": ram_weight_multiplier,
            "CPUWeigher": cpu_weight_multiplier,
            "DiskWeigher": disk_weight_multiplier,
        }
    )
    return FilterScheduler(
        build_filters(names, config), weighers, host_subset_size, max_attempts, rng
    )
