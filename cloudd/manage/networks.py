"""`cloudd manage network [list]`: the fixed networks and the floating pools, with what is used."""

from __future__ import annotations

import argparse
import ipaddress
from typing import Any

from cloudd.config import CloudConfig
from cloudd.identity import projects
from cloudd.manage.common import print_table
from cloudd.network import ipam, store


def _span(addresses: list[str]) -> str:
    """A pool's addresses as ranges: 10.218.0.1-10.218.0.254 (several when it has holes)."""
    ordered = sorted(ipaddress.IPv4Address(a) for a in addresses)
    spans: list[list[ipaddress.IPv4Address]] = []
    for address in ordered:
        if spans and int(address) == int(spans[-1][1]) + 1:
            spans[-1][1] = address
        else:
            spans.append([address, address])
    return ", ".join(f"{a}-{b}" if a != b else str(a) for a, b in spans[:4]) + (
        f", ... ({len(spans)} ranges)" if len(spans) > 4 else "")


async def network_list(db: Any, cfg: CloudConfig, args: argparse.Namespace) -> int:
    names = await projects.names_by_id(db)
    counts = await store.fixed_ip_counts(db)
    nets = await ipam.list_networks(db)
    print(f"fixed networks ([network] network_manager = {cfg.network.network_manager}):")
    print_table(("ID", "Label", "CIDR", "Bridge", "VLAN", "Project", "Gateway host", "Used",
                 "Free"), [
        (n["uuid"], n["label"], n["cidr"], n["bridge"], n["vlan"] or "-",
         names.get(str(n["project_id"]), n["project_id"]) if n["project_id"] else "(shared)",
         n["host"] or "-", *counts.get(int(n["id"]), (0, 0))) for n in nets])
    print()
    print(f"floating pools (default: {cfg.network.default_floating_pool}):")
    pools: dict[str, list[store.PoolAddress]] = {}
    for row in await store.pool_addresses(db):
        pools.setdefault(row.pool, []).append(row)
    print_table(("Pool", "Range", "Interface", "Allocated", "Associated", "Free"), [
        (pool, _span([r.address for r in members]),
         ", ".join(sorted({r.interface or "(uplink)" for r in members})),
         sum(1 for r in members if r.project_id),
         sum(1 for r in members if r.fixed_ip_id is not None),
         sum(1 for r in members if not r.project_id)) for pool, members in pools.items()])
    return 0
