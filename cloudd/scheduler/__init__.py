"""Host selection (Nova's nova-scheduler): filters, weighers, chance and filter drivers.

This package is pure and synchronous; `cloudd.scheduler.service` glues it to the database and
RPC.
"""

from cloudd.scheduler.drivers import (
    BaseScheduler,
    ChanceScheduler,
    FilterScheduler,
    make_scheduler,
)
from cloudd.scheduler.exceptions import NoValidHost
from cloudd.scheduler.host_state import HostState
from cloudd.scheduler.request import (
    FlavorSpec,
    ImageSpec,
    InstanceGroupSpec,
    RequestSpec,
    RetrySpec,
    SchedulerHints,
)

__all__ = [
    "BaseScheduler",
    "ChanceScheduler",
    "FilterScheduler",
    "FlavorSpec",
    "HostState",
    "ImageSpec",
    "InstanceGroupSpec",
    "NoValidHost",
    "RequestSpec",
    "RetrySpec",
    "SchedulerHints",
    "make_scheduler",
]
