"""A server's NICs read from the nova-network tables, for many servers in one query: the
Compute API's ``addresses`` and the Network API's ports both come from here."""

from __future__ import annotations

from typing import Any

from cloudd.db import Executor

_NICS = (
    "SELECT v.uuid AS vif_id, v.instance_uuid, v.address AS mac, v.created_at,"
    " n.uuid AS network_uuid, n.label, f.address AS fixed_address, i.project_id, i.host,"
    " fl.address AS floating_address"
    " FROM virtual_interfaces v JOIN networks n ON n.id = v.network_id"
    " JOIN instances i ON i.uuid = v.instance_uuid"
    " LEFT JOIN fixed_ips f ON f.virtual_interface_id = v.id"
    " LEFT JOIN floating_ips fl ON fl.fixed_ip_id = f.id"
)


async def nics(db: Executor, instance_uuids: list[str] | None = None,
               project_id: str | None = None) -> list[dict[str, Any]]:
    """One entry per virtual interface: its MAC, network, fixed IP and floating IPs."""
    clauses, args = [], list[Any]()
    if instance_uuids is not None:
        if not instance_uuids:
            return []
        marks = ", ".join(f"${n}" for n in range(1, len(instance_uuids) + 1))
        clauses.append(f"v.instance_uuid IN ({marks})")
        args += instance_uuids
    if project_id is not None:
        args.append(project_id)
        clauses.append(f"i.project_id = ${len(args)}")
    where = " WHERE " + " AND ".join(clauses) if clauses else ""
    by_vif: dict[str, dict[str, Any]] = {}
    for row in await db.fetch(_NICS + where + " ORDER BY v.id, fl.id", *args):
        nic = by_vif.setdefault(row["vif_id"], {**row, "floating_addresses": []})
        if row["floating_address"]:
            nic["floating_addresses"].append(row["floating_address"])
    return list(by_vif.values())


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
    for nic in await nics(db, instance_uuids):
        entries = result[nic["instance_uuid"]].setdefault(nic["label"], [])
        if nic["fixed_address"]:
            entries.append(_entry(nic["fixed_address"], "fixed", nic["mac"], detailed))
        for address in nic["floating_addresses"]:
            entries.append(_entry(address, "floating", nic["mac"], detailed))
    return result


async def server_security_groups(db: Executor, instance_uuids: list[str]
                                 ) -> dict[str, list[dict[str, str]]]:
    """``{uuid: [{"name": ...}]}`` of the groups each server is in, in one query."""
    result: dict[str, list[dict[str, str]]] = {u: [] for u in instance_uuids}
    if not instance_uuids:
        return result
    marks = ", ".join(f"${n}" for n in range(1, len(instance_uuids) + 1))
    for row in await db.fetch(
            "SELECT a.instance_uuid, g.name FROM security_group_instance_association a"
            " JOIN security_groups g ON g.id = a.security_group_id"
            f" WHERE a.instance_uuid IN ({marks}) ORDER BY g.id", *instance_uuids):
        result[row["instance_uuid"]].append({"name": row["name"]})
    return result
