"""FilterScheduler and ChanceScheduler: picks, consumption, NoValidHost, retries, groups."""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest

from cloudd.scheduler import (
    ChanceScheduler,
    FilterScheduler,
    HostState,
    InstanceGroupSpec,
    NoValidHost,
    RequestSpec,
    RetrySpec,
    make_scheduler,
)
from cloudd.scheduler.filters import build_filters

HostFactory = Callable[..., HostState]
SpecFactory = Callable[..., RequestSpec]


def three_hosts(make_host: HostFactory) -> list[HostState]:
    return [make_host(name) for name in ("h1", "h2", "h3")]


def test_multi_instance_request_spreads_then_runs_out(make_host: HostFactory,
                                                      make_spec: SpecFactory) -> None:
    scheduler = make_scheduler("filter_scheduler")
    hosts = three_hosts(make_host)
    big = make_spec(memory_mb=6000, instance_uuids=["i-1", "i-2", "i-3"])

    chosen = scheduler.select_destinations(big, hosts)

    assert sorted(h.host for h in chosen) == ["h1", "h2", "h3"]
    assert all(h.free_ram_mb == 8192 - 6000 for h in hosts)
    assert [uuid for h in chosen for uuid in h.instance_uuids] == ["i-1", "i-2", "i-3"]
    with pytest.raises(NoValidHost, match="RamFilter 3->0"):
        scheduler.select_destinations(make_spec(memory_mb=6000), hosts)


def test_failed_multi_instance_request_releases_earlier_picks(make_host: HostFactory,
                                                              make_spec: SpecFactory) -> None:
    scheduler = make_scheduler("filter_scheduler")
    hosts = three_hosts(make_host)
    four = make_spec(memory_mb=6000, num_instances=4)

    with pytest.raises(NoValidHost):
        scheduler.select_destinations(four, hosts)

    assert hosts == three_hosts(make_host)  # nothing left consumed


def test_no_valid_host_message_names_filters_and_counts(make_host: HostFactory,
                                                        make_spec: SpecFactory) -> None:
    hosts = [make_host("up1"), make_host("up2"), make_host("down", service_up=False)]
    scheduler = FilterScheduler(build_filters(["ComputeFilter", "RamFilter", "CoreFilter"]), [])

    with pytest.raises(NoValidHost) as raised:
        scheduler.select_destinations(make_spec(memory_mb=100_000), hosts)

    assert raised.value.reason == (
        "No valid host was found. There are not enough hosts available. "
        "Filters: ComputeFilter 3->2, RamFilter 2->0"
    )
    assert raised.value.filter_counts == [("ComputeFilter", 3, 2), ("RamFilter", 2, 0)]


def test_no_hosts_at_all(make_spec: SpecFactory) -> None:
    with pytest.raises(NoValidHost, match="No valid host was found"):
        make_scheduler("filter_scheduler").select_destinations(make_spec(), [])


def test_exceeding_max_attempts(make_host: HostFactory, make_spec: SpecFactory) -> None:
    spec = make_spec(instance_uuids=["i-1"], retry=RetrySpec(num_attempts=4, hosts=["h1"]))
    with pytest.raises(NoValidHost, match="Exceeded max scheduling attempts 3 for instance i-1"):
        make_scheduler("filter_scheduler").select_destinations(spec, three_hosts(make_host))


def test_retry_avoids_hosts_already_tried(make_host: HostFactory,
                                          make_spec: SpecFactory) -> None:
    hosts = three_hosts(make_host)
    spec = make_spec(retry=RetrySpec(num_attempts=3, hosts=["h1", "h2"]))
    [chosen] = make_scheduler("filter_scheduler").select_destinations(spec, hosts)
    assert chosen.host == "h3"


def test_anti_affinity_group_spreads_one_request(make_host: HostFactory,
                                                 make_spec: SpecFactory) -> None:
    hosts = three_hosts(make_host)
    group = InstanceGroupSpec(policy="anti-affinity", hosts=["h2"])
    spec = make_spec(num_instances=2, instance_group=group)
    # Stack weighing would otherwise put both on the same host.
    scheduler = make_scheduler("filter_scheduler", ram_weight_multiplier=-1.0)

    chosen = scheduler.select_destinations(spec, hosts)

    assert sorted(h.host for h in chosen) == ["h1", "h3"]
    assert spec.instance_group is not None and spec.instance_group.hosts == ["h2"]
    with pytest.raises(NoValidHost, match="ServerGroupAntiAffinityFilter 3->0"):
        scheduler.select_destinations(make_spec(num_instances=3, instance_group=group), hosts)


def test_affinity_group_keeps_one_request_together(make_host: HostFactory,
                                                   make_spec: SpecFactory) -> None:
    hosts = three_hosts(make_host)
    spec = make_spec(num_instances=3, instance_group=InstanceGroupSpec(policy="affinity"))
    chosen = make_scheduler("filter_scheduler").select_destinations(spec, hosts)  # spread weigher
    assert len({h.host for h in chosen}) == 1


def test_forced_host_skips_filters(make_host: HostFactory, make_spec: SpecFactory) -> None:
    hosts = [make_host("h1"), make_host("h2", service_disabled=True)]
    [chosen] = make_scheduler("filter_scheduler").select_destinations(
        make_spec(force_hosts=["H2"]), hosts
    )
    assert chosen.host == "h2"
    with pytest.raises(NoValidHost, match="forced host"):
        make_scheduler("filter_scheduler").select_destinations(
            make_spec(force_hosts=["nowhere"]), hosts
        )


def test_host_subset_size_picks_among_the_best(make_host: HostFactory,
                                               make_spec: SpecFactory) -> None:
    hosts = [make_host(f"h{i}", free_ram_mb=1000 * i) for i in range(1, 6)]
    scheduler = make_scheduler("filter_scheduler", host_subset_size=2, rng=random.Random(7),
                               cpu_weight_multiplier=0, disk_weight_multiplier=0)
    nothing = make_spec(memory_mb=0, vcpus=0, root_gb=0)  # so repeated picks never fill a host
    picks = {scheduler.select_destinations(nothing, hosts)[0].host
             for _ in range(40)}
    assert picks == {"h4", "h5"}


def test_chance_scheduler_picks_only_passing_hosts(make_host: HostFactory,
                                                   make_spec: SpecFactory) -> None:
    hosts = [make_host("up1"), make_host("down", service_up=False),
             make_host("off", service_disabled=True), make_host("up2"), make_host("tried")]
    scheduler = make_scheduler("chance", rng=random.Random(1))
    spec = make_spec(memory_mb=0, vcpus=0, root_gb=0,
                     retry=RetrySpec(num_attempts=2, hosts=["tried"]))
    picks = {scheduler.select_destinations(spec, hosts)[0].host for _ in range(50)}
    assert picks == {"up1", "up2"}


def test_chance_scheduler_no_valid_host(make_host: HostFactory, make_spec: SpecFactory) -> None:
    scheduler = ChanceScheduler(build_filters(["ComputeFilter"]))
    with pytest.raises(NoValidHost, match="ComputeFilter 1->0"):
        scheduler.select_destinations(make_spec(), [make_host(service_up=False)])


def test_make_scheduler_names() -> None:
    assert isinstance(make_scheduler("nova.scheduler.chance.ChanceScheduler"), ChanceScheduler)
    assert isinstance(make_scheduler("FilterScheduler"), FilterScheduler)
    with pytest.raises(ValueError, match="unknown scheduler driver"):
        make_scheduler("simple")
