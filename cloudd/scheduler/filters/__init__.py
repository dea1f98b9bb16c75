"""Host filters and the registry that lets configuration name them."""

from __future__ import annotations

from collections.abc import Iterable

from cloudd.scheduler.filters.affinity import (
    DifferentHostFilter,
    SameHostFilter,
    ServerGroupAffinityFilter,
    ServerGroupAntiAffinityFilter,
)
from cloudd.scheduler.filters.base import BaseHostFilter, FilterConfig, HostPredicate
from cloudd.scheduler.filters.capabilities import ComputeCapabilitiesFilter
from cloudd.scheduler.filters.compute import (
    AvailabilityZoneFilter,
    ComputeFilter,
    NumInstancesFilter,
    RetryFilter,
)
from cloudd.scheduler.filters.image_props import ImagePropertiesFilter
from cloudd.scheduler.filters.resources import CoreFilter, DiskFilter, RamFilter

FILTER_CLASSES: dict[str, type[BaseHostFilter]] = {
    cls.name: cls
    for cls in (
        RetryFilter,
        AvailabilityZoneFilter,
        ComputeFilter,
        RamFilter,
        CoreFilter,
        DiskFilter,
        ComputeCapabilitiesFilter,
        ImagePropertiesFilter,
        ServerGroupAntiAffinityFilter,
        ServerGroupAffinityFilter,
        SameHostFilter,
        DifferentHostFilter,
        NumInstancesFilter,
    )
}

# Nova's Grizzly defaults plus the capacity, server group and same/different host filters
# later releases enabled; cheap, usually-discriminating filters come first.
DEFAULT_FILTERS: tuple[str, ...] = (
    "RetryFilter",
    "AvailabilityZoneFilter",
    "ComputeFilter",
    "RamFilter",
    "CoreFilter",
    "DiskFilter",
    "ComputeCapabilitiesFilter",
    "ImagePropertiesFilter",
    "ServerGroupAntiAffinityFilter",
    "ServerGroupAffinityFilter",
    "SameHostFilter",
    "DifferentHostFilter",
)


def build_filters(
    names: Iterable[str], config: FilterConfig | None = None
) -> list[BaseHostFilter]:
    """Instantiate filters by class name; an unknown name raises ValueError listing valid ones."""
    config = config or FilterConfig()
    built: list[BaseHostFilter] = []
    for name in names:
        cls = FILTER_CLASSES.get(name)
        if cls is None:
            known = ", ".join(sorted(FILTER_CLASSES))
            raise ValueError(f"unknown scheduler filter {name!r}; known filters: {known}")
        built.append(cls(config))
    return built


__all__ = [
    "DEFAULT_FILTERS",
    "FILTER_CLASSES",
    "AvailabilityZoneFilter",
    "BaseHostFilter",
    "ComputeCapabilitiesFilter",
    "ComputeFilter",
    "CoreFilter",
    "DifferentHostFilter",
    "DiskFilter",
    "FilterConfig",
    "HostPredicate",
    "ImagePropertiesFilter",
    "NumInstancesFilter",
    "RamFilter",
    "RetryFilter",
    "SameHostFilter",
    "ServerGroupAffinityFilter",
    "ServerGroupAntiAffinityFilter",
    "build_filters",
]
