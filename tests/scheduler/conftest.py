"""Factories for host states and request specs shared by the scheduler tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from cloudd.scheduler import FlavorSpec, HostState, RequestSpec

HostFactory = Callable[..., HostState]
SpecFactory = Callable[..., RequestSpec]


def build_host(name: str = "host1", **overrides: Any) -> HostState:
    """A healthy 8-vCPU / 8 GB / 100 GB qemu host with nothing running, ratios 1.0."""
    values: dict[str, Any] = {
        "host": name,
        "nodename": f"{name}-node",
        "uuid": f"uuid-{name}",
        "hypervisor_type": "QEMU",
        "hypervisor_version": 6002000,
        "supported_instances": [("x86_64", "qemu", "hvm")],
        "cpu_info": {"arch": "x86_64", "vendor": "Intel", "features": ["vmx", "sse4"]},
        "vcpus_total": 8,
        "memory_mb_total": 8192,
        "free_ram_mb": 8192,
        "local_gb_total": 100,
        "free_disk_mb": 100 * 1024,
        "cpu_allocation_ratio": 1.0,
        "ram_allocation_ratio": 1.0,
        "disk_allocation_ratio": 1.0,
    }
    values.update(overrides)
    return HostState(**values)


def build_spec(
    memory_mb: int = 512,
    vcpus: int = 1,
    root_gb: int = 1,
    extra_specs: dict[str, str] | None = None,
    **fields: Any,
) -> RequestSpec:
    flavor = FlavorSpec(
        memory_mb=memory_mb, vcpus=vcpus, root_gb=root_gb, extra_specs=extra_specs or {}
    )
    return RequestSpec(flavor=flavor, **fields)


@pytest.fixture
def make_host() -> HostFactory:
    return build_host


@pytest.fixture
def make_spec() -> SpecFactory:
    return build_spec
