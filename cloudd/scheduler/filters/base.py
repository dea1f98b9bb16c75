"""The host filter contract.

A filter turns a request into a per-host predicate once (`prepare`), so anything derived from
the request (parsed extra specs, hint sets, requested sizes) is computed once per decision and
the per-host check stays O(1). `prepare` returns None when the request does not concern the
filter at all (no AZ asked, no hints, ...): the driver then skips the pass over the hosts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from cloudd.scheduler.host_state import HostState
from cloudd.scheduler.request import RequestSpec

HostPredicate = Callable[[HostState], bool]


@dataclass(frozen=True, slots=True)
class FilterConfig:
    """Options some filters read (Nova's scheduler config options of the same names)."""

    max_instances_per_host: int = 50


class BaseHostFilter:
    """Base class: subclasses set `name` and implement `prepare`."""

    name: str = "BaseHostFilter"

    def __init__(self, config: FilterConfig | None = None) -> None:
        self.config = config or FilterConfig()

    def prepare(self, spec: RequestSpec) -> HostPredicate | None:
        """Return the per-host test for `spec`, or None if every host passes."""
        raise NotImplementedError

    def host_passes(self, host: HostState, spec: RequestSpec) -> bool:
        """Whether `host` may take an instance of `spec` (convenience for single checks)."""
        predicate = self.prepare(spec)
        return predicate is None or predicate(host)

    def filter_all(self, hosts: list[HostState], spec: RequestSpec) -> list[HostState]:
        """The hosts that pass, in their original order."""
        predicate = self.prepare(spec)
        if predicate is None:
            return hosts
        return list(filter(predicate, hosts))  # the builtin calls the predicate from C

    def __repr__(self) -> str:
        return f"<{self.name}>"
