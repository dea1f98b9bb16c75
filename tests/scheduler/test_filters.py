"""Each filter passes and fails the hosts Nova's would."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from cloudd.scheduler import HostState, ImageSpec, InstanceGroupSpec, RequestSpec, RetrySpec
from cloudd.scheduler import SchedulerHints as Hints
from cloudd.scheduler.filters import (
    DEFAULT_FILTERS,
    AvailabilityZoneFilter,
    ComputeFilter,
    CoreFilter,
    DifferentHostFilter,
    DiskFilter,
    FilterConfig,
    ImagePropertiesFilter,
    NumInstancesFilter,
    RamFilter,
    RetryFilter,
    SameHostFilter,
    ServerGroupAffinityFilter,
    ServerGroupAntiAffinityFilter,
    build_filters,
)

HostFactory = Callable[..., HostState]
SpecFactory = Callable[..., RequestSpec]


def test_retry_filter_skips_hosts_already_tried(make_host: HostFactory,
                                                make_spec: SpecFactory) -> None:
    spec = make_spec(retry=RetrySpec(num_attempts=2, hosts=["host1"]))
    assert not RetryFilter().host_passes(make_host("host1"), spec)
    assert RetryFilter().host_passes(make_host("host2"), spec)
    assert RetryFilter().host_passes(make_host("host1"), make_spec())


def test_availability_zone_filter(make_host: HostFactory, make_spec: SpecFactory) -> None:
    in_a = make_host("a", availability_zone="zone-a")
    in_b = make_host("b", availability_zone="nova")
    az_filter = AvailabilityZoneFilter()
    assert az_filter.host_passes(in_a, make_spec(availability_zone="zone-a"))
    assert not az_filter.host_passes(in_b, make_spec(availability_zone="zone-a"))
    assert az_filter.host_passes(in_b, make_spec())  # no zone asked: anywhere


@pytest.mark.parametrize(
    ("service_up", "service_disabled", "passes"),
    [(True, False, True), (False, False, False), (True, True, False), (False, True, False)],
)
def test_compute_filter_needs_service_up_and_enabled(
    make_host: HostFactory, make_spec: SpecFactory,
    service_up: bool, service_disabled: bool, passes: bool,
) -> None:
    host = make_host(service_up=service_up, service_disabled=service_disabled)
    assert ComputeFilter().host_passes(host, make_spec()) is passes


def test_ram_filter_applies_allocation_ratio(make_host: HostFactory,
                                             make_spec: SpecFactory) -> None:
    # 8192 MB total, 6144 used, ratio 1.5: usable = 12288 - 6144 = 6144.
    host = make_host(free_ram_mb=2048, memory_mb_used=6144, ram_allocation_ratio=1.5)
    assert RamFilter().host_passes(host, make_spec(memory_mb=6144))
    assert not RamFilter().host_passes(host, make_spec(memory_mb=6145))
    host.ram_allocation_ratio = 1.0
    assert RamFilter().host_passes(host, make_spec(memory_mb=2048))
    assert not RamFilter().host_passes(host, make_spec(memory_mb=2049))


def test_core_filter_applies_allocation_ratio(make_host: HostFactory,
                                              make_spec: SpecFactory) -> None:
    host = make_host(vcpus_total=4, vcpus_used=10, cpu_allocation_ratio=4.0)  # 16 - 10 = 6
    assert CoreFilter().host_passes(host, make_spec(vcpus=6))
    assert not CoreFilter().host_passes(host, make_spec(vcpus=7))
    host.cpu_allocation_ratio = 1.0  # already overcommitted: nothing fits
    assert not CoreFilter().host_passes(host, make_spec(vcpus=1))


def test_core_filter_passes_host_that_reports_no_vcpus(make_host: HostFactory,
                                                       make_spec: SpecFactory) -> None:
    assert CoreFilter().host_passes(make_host(vcpus_total=0), make_spec(vcpus=64))


def test_disk_filter_counts_root_ephemeral_and_swap(make_host: HostFactory,
                                                    make_spec: SpecFactory) -> None:
    host = make_host(local_gb_total=20, free_disk_mb=10 * 1024)  # 10 GB used
    spec = make_spec(root_gb=9)
    spec.flavor.swap = 1024
    assert DiskFilter().host_passes(host, spec)  # 9 GB + 1 GB swap = exactly the 10 GB left
    spec.flavor.swap = 1025
    assert not DiskFilter().host_passes(host, spec)
    host.disk_allocation_ratio = 2.0  # 40 GB usable - 10 GB used
    spec.flavor.ephemeral_gb = 19  # 9 + 19 GB + 1025 MB swap fits the 30 GB left
    assert DiskFilter().host_passes(host, spec)
    spec.flavor.ephemeral_gb = 20
    assert not DiskFilter().host_passes(host, spec)


def test_image_properties_filter(make_host: HostFactory, make_spec: SpecFactory) -> None:
    host = make_host(supported_instances=[("x86_64", "qemu", "hvm"), ("i686", "kvm", "hvm")])
    image_filter = ImagePropertiesFilter()

    def image(**properties: object) -> RequestSpec:
        return make_spec(image=ImageSpec(properties=properties))

    assert image_filter.host_passes(host, image())
    assert image_filter.host_passes(host, image(architecture="x86_64", hypervisor_type="qemu"))
    assert image_filter.host_passes(host, image(architecture="amd64"))  # alias of x86_64
    assert image_filter.host_passes(host, image(architecture="i686", hypervisor_type="kvm"))
    assert not image_filter.host_passes(host, image(architecture="x86_64", hypervisor_type="kvm"))
    assert not image_filter.host_passes(host, image(architecture="aarch64"))
    assert not image_filter.host_passes(host, image(vm_mode="xen"))
    assert not image_filter.host_passes(make_host(supported_instances=[]), image(vm_mode="hvm"))


def test_image_properties_filter_hypervisor_version(make_host: HostFactory,
                                                    make_spec: SpecFactory) -> None:
    host = make_host(hypervisor_version=6002000)
    key = "hypervisor_version_requires"
    needs_newer = make_spec(image=ImageSpec(properties={key: ">= 7000000"}))
    needs_older = make_spec(image=ImageSpec(properties={key: ">= 6000000"}))
    assert not ImagePropertiesFilter().host_passes(host, needs_newer)
    assert ImagePropertiesFilter().host_passes(host, needs_older)


def test_same_and_different_host_filters(make_host: HostFactory, make_spec: SpecFactory) -> None:
    with_vm = make_host("a", instance_uuids={"vm-1", "vm-2"})
    empty = make_host("b")
    same = make_spec(scheduler_hints=Hints(same_host=["vm-1", "vm-9"]))
    # A lone uuid is accepted, as Nova's API does.
    different = make_spec(scheduler_hints=Hints.model_validate({"different_host": "vm-2"}))

    assert SameHostFilter().host_passes(with_vm, same)
    assert not SameHostFilter().host_passes(empty, same)
    assert not DifferentHostFilter().host_passes(with_vm, different)
    assert DifferentHostFilter().host_passes(empty, different)
    assert SameHostFilter().host_passes(empty, make_spec())
    assert DifferentHostFilter().host_passes(with_vm, make_spec())


def test_server_group_affinity_filters(make_host: HostFactory, make_spec: SpecFactory) -> None:
    member_host, other = make_host("a"), make_host("b")
    affinity = make_spec(instance_group=InstanceGroupSpec(policy="affinity", hosts=["a"]))
    anti = make_spec(instance_group=InstanceGroupSpec(policy="anti-affinity", hosts=["a"]))
    empty_affinity = make_spec(instance_group=InstanceGroupSpec(policy="affinity"))

    assert ServerGroupAffinityFilter().host_passes(member_host, affinity)
    assert not ServerGroupAffinityFilter().host_passes(other, affinity)
    assert ServerGroupAffinityFilter().host_passes(other, empty_affinity)
    assert not ServerGroupAntiAffinityFilter().host_passes(member_host, anti)
    assert ServerGroupAntiAffinityFilter().host_passes(other, anti)
    # Each filter ignores the other policy.
    assert ServerGroupAffinityFilter().host_passes(other, anti)
    assert ServerGroupAntiAffinityFilter().host_passes(member_host, affinity)


def test_num_instances_filter(make_host: HostFactory, make_spec: SpecFactory) -> None:
    num_filter = NumInstancesFilter(FilterConfig(max_instances_per_host=3))
    assert num_filter.host_passes(make_host(num_instances=2), make_spec())
    assert not num_filter.host_passes(make_host(num_instances=3), make_spec())


def test_filter_all_keeps_order_and_skips_unconcerned_filters(
    make_host: HostFactory, make_spec: SpecFactory
) -> None:
    hosts = [make_host("a"), make_host("b", service_up=False), make_host("c")]
    assert [h.host for h in ComputeFilter().filter_all(hosts, make_spec())] == ["a", "c"]
    assert AvailabilityZoneFilter().filter_all(hosts, make_spec()) is hosts


def test_build_filters_by_name() -> None:
    built = build_filters(DEFAULT_FILTERS)
    assert [f.name for f in built] == list(DEFAULT_FILTERS)
    with pytest.raises(ValueError, match="unknown scheduler filter 'NoSuchFilter'"):
        build_filters(["RamFilter", "NoSuchFilter"])
