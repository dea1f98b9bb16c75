"""Hypervisor drivers: the interface (``base``), an in-memory ``fake`` and ``libvirt``.

The types the drivers' reports travel in over RPC (``HostResources``, ``ImageInfo``,
``HostDomain``) are the compute contract's: ``cloudd.rpc.contracts.compute``."""

from cloudd.agent.compute.drivers.base import (
    BuildFailed,
    ComputeDriver,
    DriverError,
    EventCallback,
    GuestInfo,
    GuestSpec,
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
    "InstanceNotFound",
    "InvalidState",
    "LifecycleEvent",
    "VncAddress",
    "load_driver",
]
