"""Hypervisor drivers: the interface (``base``), an in-memory ``fake`` and ``libvirt``."""

from cloudd.compute.drivers.base import (
    BuildFailed,
    ComputeDriver,
    DriverError,
    EventCallback,
    GuestInfo,
    GuestSpec,
    HostResources,
    ImageInfo,
    InstanceNotFound,
    InvalidState,
    LifecycleEvent,
    VncAddress,
    load_driver,
)

__all__ = [
    "BuildFailed",
    "ComputeDriver",
    "DriverError",
    "EventCallback",
    "GuestInfo",
    "GuestSpec",
    "HostResources",
    "ImageInfo",
    "InstanceNotFound",
    "InvalidState",
    "LifecycleEvent",
    "VncAddress",
    "load_driver",
]
