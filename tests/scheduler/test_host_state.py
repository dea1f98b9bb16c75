"""HostState built from a compute_nodes row, and consume/release bookkeeping."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from cloudd.scheduler import HostState, RequestSpec

HostFactory = Callable[..., HostState]
SpecFactory = Callable[..., RequestSpec]


def node_row() -> dict[str, object]:
    return {
        "id": 7,
        "uuid": "node-uuid",
        "service_id": 3,
        "host": "compute1",
        "hypervisor_hostname": "compute1.lab",
        "hypervisor_type": "QEMU",
        "hypervisor_version": 6002000,
        "cpu_info": json.dumps({"arch": "x86_64", "vendor": "AMD"}),
        "supported_instances": json.dumps([["x86_64", "qemu", "hvm"], ["i686", "qemu", "hvm"]]),
        "availability_zone": "zone-a",
        "host_ip": "10.0.0.5",
        "vcpus": 16,
        "memory_mb": 32768,
        "local_gb": 500,
        "vcpus_used": 4,
        "memory_mb_used": 4608,
        "local_gb_used": 40,
        "running_vms": 2,
        "cpu_allocation_ratio": 16.0,
        "ram_allocation_ratio": 1.5,
        "disk_allocation_ratio": 1.0,
        "reserved_host_memory_mb": 512,
        "created_at": 0.0,
        "updated_at": None,
    }


def test_from_row_maps_compute_node_columns() -> None:
    host = HostState.from_row(node_row(), service_up=True, service_disabled=False,
                              instance_uuids={"i-1", "i-2"})

    assert (host.host, host.nodename, host.uuid) == ("compute1", "compute1.lab", "node-uuid")
    assert host.availability_zone == "zone-a"
    assert host.supported_instances == [("x86_64", "qemu", "hvm"), ("i686", "qemu", "hvm")]
    assert host.cpu_info == {"arch": "x86_64", "vendor": "AMD"}
    assert host.free_ram_mb == 32768 - 4608
    assert host.free_disk_mb == (500 - 40) * 1024
    assert host.num_instances == 2
    assert host.vcpus_free == 16 * 16.0 - 4
    assert host.instance_uuids == {"i-1", "i-2"}


def test_from_row_accepts_decoded_json_and_copies_uuid_set() -> None:
    row = node_row() | {"cpu_info": {"arch": "aarch64"}, "supported_instances": []}
    uuids = {"i-1"}
    host = HostState.from_row(row, service_up=False, service_disabled=True, instance_uuids=uuids)
    host.instance_uuids.add("i-2")

    assert host.cpu_info == {"arch": "aarch64"}
    assert host.supported_instances == []
    assert (host.service_up, host.service_disabled) == (False, True)
    assert uuids == {"i-1"}


def test_host_state_has_slots(make_host: HostFactory) -> None:
    with pytest.raises(AttributeError):
        make_host().not_a_field = 1  # type: ignore[attr-defined]


def test_consume_then_release_round_trips(make_host: HostFactory, make_spec: SpecFactory) -> None:
    host = make_host()
    spec = make_spec(memory_mb=1024, vcpus=2, root_gb=10)
    spec.flavor.swap = 512

    host.consume(spec, "i-9")
    assert (host.free_ram_mb, host.memory_mb_used) == (8192 - 1024, 1024)
    assert host.vcpus_used == 2
    assert host.local_gb_used == 10
    assert host.free_disk_mb == 100 * 1024 - (10 * 1024 + 512)
    assert host.num_instances == 1
    assert "i-9" in host.instance_uuids

    host.release(spec, "i-9")
    assert host == make_host()
