"""ComputeCapabilitiesFilter and Nova's extra spec operators."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from cloudd.scheduler import HostState, RequestSpec
from cloudd.scheduler.filters import ComputeCapabilitiesFilter
from cloudd.scheduler.filters.extra_specs_ops import match

HostFactory = Callable[..., HostState]
SpecFactory = Callable[..., RequestSpec]


@pytest.mark.parametrize(
    ("value", "requirement", "expected"),
    [
        (8, "= 4", True),  # "=" means at least, in Nova
        (2, "= 4", False),
        (4, "== 4", True),
        (4.0, "== 4", True),
        (5, "== 4", False),
        (5, "!= 4", True),
        (4, "!= 4", False),
        (4, ">= 4", True),
        (3, ">= 4", False),
        (4, "<= 4", True),
        (5, "<= 4", False),
        ("abc", ">= 4", False),  # non-numeric host value fails numeric ops
        ("QEMU", "s== QEMU", True),
        ("qemu", "s== QEMU", False),
        ("KVM", "s!= QEMU", True),
        ("b", "s< c", True),
        ("b", "s>= c", False),
        ("vmx sse4", "<in> sse4", True),
        (["vmx", "sse4"], "<in> sse4", True),
        (["vmx", "sse4"], "<in> avx", False),
        ("Intel", "<or> AMD <or> Intel", True),
        ("ARM", "<or> AMD <or> Intel", False),
        ("QEMU", "QEMU", True),  # no operator: string equality
        ("QEMU", "KVM", False),
        (None, "= 1", False),
        (None, "<or> a <or> b", False),
    ],
)
def test_extra_spec_operators(value: object, requirement: str, expected: bool) -> None:
    assert match(value, requirement) is expected


def test_unscoped_and_capabilities_scoped_keys(make_host: HostFactory,
                                               make_spec: SpecFactory) -> None:
    host = make_host(vcpus_total=16, hypervisor_type="QEMU")
    caps = ComputeCapabilitiesFilter()

    assert caps.host_passes(host, make_spec(extra_specs={"vcpus_total": ">= 16"}))
    assert caps.host_passes(host, make_spec(extra_specs={"capabilities:hypervisor_type": "QEMU"}))
    assert not caps.host_passes(host, make_spec(extra_specs={"capabilities:vcpus_total": ">= 32"}))
    assert not caps.host_passes(
        host, make_spec(extra_specs={"vcpus_total": ">= 1", "hypervisor_type": "s== KVM"})
    )


def test_nested_capability_in_cpu_info(make_host: HostFactory, make_spec: SpecFactory) -> None:
    host = make_host(cpu_info={"vendor": "Intel", "features": ["vmx", "avx2"]})
    caps = ComputeCapabilitiesFilter()

    assert caps.host_passes(host, make_spec(extra_specs={"capabilities:cpu_info:vendor": "Intel"}))
    assert caps.host_passes(
        host, make_spec(extra_specs={"capabilities:cpu_info:features": "<in> avx2"})
    )
    assert not caps.host_passes(
        host, make_spec(extra_specs={"capabilities:cpu_info:model": "Haswell"})
    )


def test_other_scopes_are_ignored_and_unknown_keys_fail(make_host: HostFactory,
                                                        make_spec: SpecFactory) -> None:
    host = make_host()
    caps = ComputeCapabilitiesFilter()

    other_scopes = {"hw:cpu_policy": "dedicated", "quota:cpu_shares": "1024"}
    assert caps.host_passes(host, make_spec(extra_specs=other_scopes))
    assert not caps.host_passes(host, make_spec(extra_specs={"no_such_capability": "1"}))
    # Method names are not capabilities.
    assert not caps.host_passes(host, make_spec(extra_specs={"consume": "x"}))
