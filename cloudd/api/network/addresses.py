"""A server's addresses and security groups as the Compute API shows them, for many servers in
one query (the NICs come from the network repository, ``cloudd.network.store.nics``, the
groups from the security group family's)."""

from __future__ import annotations

from typing import Any

from cloudd.db import Executor
from cloudd.network import secgroups, store


def _entry(address: str, kind: str, mac: str, detailed: bool) -> dict[str, Any]:
    entry: dict[str, Any] = {"version": 4, "addr": address}
    if detailed:
        entry.update({"OS-EXT-IPS:type": kind, "OS-EXT-IPS-MAC:mac_addr": mac})
    return entry


async def server_addresses(db: Executor, instance_uuids: list[str], detailed: bool = True
                           ) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """``{uuid: {network label: [fixed, floating...]}}`` (Nova's server ``addresses``);
    ``detailed=False`` gives the ``{addr, version}`` items of the basic view and of /ips."""
    result: dict[str, dict[str, list[dict[str, Any]]]] = {u: {} for u in instance_uuids}
    for nic in await store.nics(db, instance_uuids):
        entries = result[nic.instance_uuid].setdefault(nic.label, [])
        if nic.fixed_address:
            entries.append(_entry(nic.fixed_address, "fixed", nic.mac, detailed))
        for address in nic.floating_addresses:
            entries.append(_entry(address, "floating", nic.mac, detailed))
    return result


async def server_security_groups(db: Executor, instance_uuids: list[str]
                                 ) -> dict[str, list[dict[str, str]]]:
    """``{uuid: [{"name": ...}]}`` of the groups each server is in, in one query."""
    groups = await secgroups.groups_of_instances(db, instance_uuids)
    return {uuid: [{"name": g.name} for g in groups[uuid]] for uuid in instance_uuids}
