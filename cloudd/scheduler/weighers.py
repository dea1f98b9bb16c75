"""Host weighers: RAM, CPU and disk, min-max normalised across the candidates like Nova.

weight(host) = sum over weighers of multiplier * (raw - min) / (max - min); when every candidate
has the same raw value that weigher contributes 0. A positive multiplier prefers the host with
the most free resource (spread); a negative one prefers the fullest (stack / fill first).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from cloudd.scheduler.host_state import HostState
from cloudd.scheduler.request import RequestSpec


class BaseHostWeigher:
    """Subclasses set `name` and implement `raw_weights`."""

    name: str = "BaseHostWeigher"

    def __init__(self, multiplier: float = 1.0) -> None:
        self.multiplier = multiplier

    def raw_weights(self, hosts: list[HostState], spec: RequestSpec) -> list[float]:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<{self.name} x{self.multiplier}>"


class RAMWeigher(BaseHostWeigher):
    """Free RAM in MB (can be negative on an overcommitted host)."""

    name = "RAMWeigher"

    def raw_weights(self, hosts: list[HostState], spec: RequestSpec) -> list[float]:
        return [host.free_ram_mb for host in hosts]


class CPUWeigher(BaseHostWeigher):
    """Free vCPUs after the allocation ratio: total * ratio - used."""

    name = "CPUWeigher"

    def raw_weights(self, hosts: list[HostState], spec: RequestSpec) -> list[float]:
        return [host.vcpus_total * host.cpu_allocation_ratio - host.vcpus_used for host in hosts]


class DiskWeigher(BaseHostWeigher):
    """Free local disk in MB."""

    name = "DiskWeigher"

    def raw_weights(self, hosts: list[HostState], spec: RequestSpec) -> list[float]:
        return [host.free_disk_mb for host in hosts]


WEIGHER_CLASSES: dict[str, type[BaseHostWeigher]] = {
    cls.name: cls for cls in (RAMWeigher, CPUWeigher, DiskWeigher)
}


def build_weighers(multipliers: Mapping[str, float]) -> list[BaseHostWeigher]:
    """Weighers by class name -> multiplier; a 0.0 multiplier leaves that weigher out."""
    built: list[BaseHostWeigher] = []
    for name, multiplier in multipliers.items():
        cls = WEIGHER_CLASSES.get(name)
        if cls is None:
            known = ", ".join(sorted(WEIGHER_CLASSES))
            raise ValueError(f"unknown scheduler weigher {name!r}; known weighers: {known}")
        if multiplier:
            built.append(cls(multiplier))
    return built


def weigh_hosts(
    weighers: Iterable[BaseHostWeigher], hosts: list[HostState], spec: RequestSpec
) -> list[float]:
    """Combined weight of each host, aligned with `hosts`."""
    totals: list[float] | None = None
    for weigher in weighers:
        raw = weigher.raw_weights(hosts, spec)
        if not raw:
            continue
        low, high = min(raw), max(raw)
        if high == low:
            continue  # no spread between candidates: Nova normalises these to 0
        scale = weigher.multiplier / (high - low)
        if totals is None:
            totals = [(value - low) * scale for value in raw]
        else:
            pairs = zip(totals, raw, strict=True)
            totals = [total + (value - low) * scale for total, value in pairs]
    return totals if totals is not None else [0.0] * len(hosts)
