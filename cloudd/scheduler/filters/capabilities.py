"""ComputeCapabilitiesFilter: flavor extra_specs must match host attributes."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from cloudd.scheduler.filters.base import BaseHostFilter, HostPredicate
from cloudd.scheduler.filters.extra_specs_ops import ValueMatcher, compile_requirement
from cloudd.scheduler.host_state import HostState
from cloudd.scheduler.request import RequestSpec

# Only data fields may be named by an extra spec, never methods or properties.
_HOST_ATTRIBUTES = frozenset(field.name for field in fields(HostState))
_MISSING = object()

Requirement = tuple[tuple[str, ...], ValueMatcher]


def _host_value(host: HostState, path: tuple[str, ...]) -> Any:
    """Walk e.g. ("cpu_info", "vendor") into the host; None if any step is missing."""
    value: Any = getattr(host, path[0], None)
    for part in path[1:]:
        if not isinstance(value, dict):
            return None
        value = value.get(part, _MISSING)
        if value is _MISSING:
            return None
    return value


def _host_check(path: tuple[str, ...], matcher: ValueMatcher) -> HostPredicate:
    """One requirement as a host predicate, with the common shapes specialised for speed."""
    if len(path) == 1:
        attribute = path[0]
        return lambda host: matcher(getattr(host, attribute))
    if len(path) == 2:
        attribute, key = path

        def nested(host: HostState) -> bool:
            container = getattr(host, attribute)
            return isinstance(container, dict) and matcher(container.get(key))

        return nested
    return lambda host: matcher(_host_value(host, path))


def parse_requirements(extra_specs: dict[str, str]) -> list[Requirement] | None:
    """The extra specs this filter checks, as (attribute path, matcher) pairs.

    Unscoped keys and `capabilities:` keys are checked; keys in any other scope (`hw:`,
    `quota:`, `aggregate_instance_extra_specs:` ...) belong to other filters or to compute.
    Returns None when some checked key names no host attribute: no host can match it.
    """
    requirements: list[Requirement] = []
    for key, requirement in extra_specs.items():
        path = tuple(key.split(":"))
        if len(path) > 1:
            if path[0] != "capabilities":
                continue
            path = path[1:]
        if path[0] not in _HOST_ATTRIBUTES:
            return None
        requirements.append((path, compile_requirement(str(requirement))))
    return requirements


def _reject_all(host: HostState) -> bool:
    return False


class ComputeCapabilitiesFilter(BaseHostFilter):
    """Pass hosts whose attributes satisfy every (unscoped or capabilities:) extra spec."""

    name = "ComputeCapabilitiesFilter"

    def prepare(self, spec: RequestSpec) -> HostPredicate | None:
        extra_specs = spec.flavor.extra_specs
        if not extra_specs:
            return None
        requirements = parse_requirements(extra_specs)
        if requirements is None:
            return _reject_all
        if not requirements:
            return None

        checks = [_host_check(path, matcher) for path, matcher in requirements]
        if len(checks) == 1:
            return checks[0]

        def satisfies_all(host: HostState) -> bool:
            for check in checks:
                if not check(host):
                    return False
            return True

        return satisfies_all
