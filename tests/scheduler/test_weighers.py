"""Weighers: min-max normalisation, multipliers, spread vs stack."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from cloudd.scheduler import HostState, RequestSpec, make_scheduler
from cloudd.scheduler.weighers import (
    CPUWeigher,
    DiskWeigher,
    RAMWeigher,
    build_weighers,
    weigh_hosts,
)

HostFactory = Callable[..., HostState]
SpecFactory = Callable[..., RequestSpec]


def test_weights_are_normalised_between_min_and_max(make_host: HostFactory,
                                                    make_spec: SpecFactory) -> None:
    hosts = [make_host("a", free_ram_mb=1000), make_host("b", free_ram_mb=3000),
             make_host("c", free_ram_mb=2000)]
    assert weigh_hosts([RAMWeigher(2.0)], hosts, make_spec()) == [0.0, 2.0, 1.0]


def test_equal_hosts_weigh_zero(make_host: HostFactory, make_spec: SpecFactory) -> None:
    hosts = [make_host("a"), make_host("b")]
    assert weigh_hosts([RAMWeigher(), CPUWeigher(), DiskWeigher()], hosts, make_spec()) == [0, 0]


def test_weighers_sum_with_their_multipliers(make_host: HostFactory,
                                             make_spec: SpecFactory) -> None:
    # a: most RAM, least CPU; b: the reverse. CPU's bigger multiplier decides.
    hosts = [make_host("a", free_ram_mb=8000, vcpus_used=6),
             make_host("b", free_ram_mb=1000, vcpus_used=0)]
    weights = weigh_hosts([RAMWeigher(1.0), CPUWeigher(3.0)], hosts, make_spec())
    assert weights == [1.0, 3.0]


@pytest.mark.parametrize(("multiplier", "expected_host"), [(1.0, "roomy"), (-1.0, "busy")])
def test_positive_multiplier_spreads_negative_stacks(
    make_host: HostFactory, make_spec: SpecFactory, multiplier: float, expected_host: str
) -> None:
    hosts = [make_host("busy", free_ram_mb=2048, memory_mb_used=6144),
             make_host("roomy", free_ram_mb=8192)]
    scheduler = make_scheduler("filter_scheduler", ram_weight_multiplier=multiplier,
                               cpu_weight_multiplier=0.0, disk_weight_multiplier=0.0)
    [chosen] = scheduler.select_destinations(make_spec(), hosts)
    assert chosen.host == expected_host


def test_build_weighers_drops_zero_multipliers_and_rejects_unknown() -> None:
    built = build_weighers({"RAMWeigher": 2.0, "CPUWeigher": 0.0, "DiskWeigher": -1.0})
    assert [(w.name, w.multiplier) for w in built] == [("RAMWeigher", 2.0), ("DiskWeigher", -1.0)]
    with pytest.raises(ValueError, match="unknown scheduler weigher"):
        build_weighers({"IoOpsWeigher": 1.0})
