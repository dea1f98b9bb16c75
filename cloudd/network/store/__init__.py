"""The network family's repository (issue 17, item 2): reads and writes on ``networks``,
``fixed_ips``, ``floating_ips`` and ``virtual_interfaces`` that the APIs, the network service,
the metadata service and the host-state builder need, including the joins with ``instances``
(a fixed IP's or a NIC's server: its project, host name, whether it still exists).

The floating IP life cycle's statements are in ``store.floating`` (its rules stay in
``cloudd.network.floating``). Allocation (``cloudd.network.ipam``) still holds its own SQL next to
its rules; it moves here in a later slice (see tests/test_sql_boundaries.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cloudd.compute.instances.records import Instance
from cloudd.compute.instances.records import from_row as instance_from_row
from cloudd.db import Executor

# ----- records ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Nic:
    """One virtual interface with its network, fixed IP, server and floating IPs."""
    vif_id: str
    instance_uuid: str
    mac: str
    created_at: Any
    network_uuid: str
    label: str
    fixed_address: str | None
    project_id: str
    host: str | None
    floating_addresses: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class PortAddress:
    """A port's (virtual interface's) fixed address and the project of its server."""
    address: str
    project_id: str


@dataclass(frozen=True)
class AllocatedAddress:
    """An allocated fixed IP of a server with one of its floating IPs (None: it has none)."""
    instance_uuid: str
    address: str
    floating_address: str | None


@dataclass(frozen=True)
class NetworkUsage:
    """What the Network API's quota details count for a project."""
    floating_ips: int
    networks: int
    ports: int


@dataclass(frozen=True)
class LeaseHosts:
    """The hosts that may report a lease of a fixed IP: the guest's and the network gateway's."""
    host: str | None
    gateway_host: str | None


@dataclass(frozen=True)
class HostFloatingIp:
    address: str
    interface: str | None
    fixed_address: str


@dataclass(frozen=True)
class GuestAddress:
    """An allocated fixed IP on a host with its interface (anti-spoofing and firewall)."""
    vif_uuid: str
    instance_uuid: str
    mac: str
    bridge: str
    address: str


@dataclass(frozen=True)
class DhcpEntry:
    """An allocated fixed IP of a network with its server, as dnsmasq's host file names it."""
    address: str
    mac: str
    hostname: str | None
    instance_uuid: str
    project_id: str


# ----- API reads ----------------------------------------------------------------------------

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
               project_id: str | None = None) -> list[Nic]:
    """One entry per virtual interface (in creation order): its MAC, network, fixed IP and
    floating IPs; narrowed to some servers and/or a project."""
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
    by_vif: dict[str, Nic] = {}
    for row in await db.fetch(_NICS + where + " ORDER BY v.id, fl.id", *args):
        nic = by_vif.get(row["vif_id"])
        if nic is None:
            nic = by_vif[row["vif_id"]] = Nic(
                vif_id=row["vif_id"], instance_uuid=row["instance_uuid"], mac=row["mac"],
                created_at=row["created_at"], network_uuid=row["network_uuid"],
                label=row["label"], fixed_address=row["fixed_address"],
                project_id=row["project_id"], host=row["host"])
        if row["floating_address"]:
            nic.floating_addresses.append(row["floating_address"])
    return list(by_vif.values())


async def allocated_addresses(db: Executor, instance_uuids: list[str]) -> list[AllocatedAddress]:
    """The servers' allocated fixed IPs, each once per floating IP it has, by fixed IP."""
    if not instance_uuids:
        return []
    marks = ", ".join(f"${n}" for n in range(1, len(instance_uuids) + 1))
    return [AllocatedAddress(r["instance_uuid"], r["address"], r["floating"])
            for r in await db.fetch(
                "SELECT f.instance_uuid, f.address, fl.address AS floating FROM fixed_ips f"
                " LEFT JOIN floating_ips fl ON fl.fixed_ip_id = f.id"
                f" WHERE f.instance_uuid IN ({marks}) AND f.allocated = 1 ORDER BY f.id",
                *instance_uuids)]


async def network_exists(db: Executor, network_uuid: str) -> bool:
    return bool(await db.fetchval(
        "SELECT count(*) FROM networks WHERE uuid = $1 AND deleted = 0", network_uuid))


async def port_address(db: Executor, port_id: str) -> PortAddress | None:
    row = await db.fetchrow(
        "SELECT f.address, i.project_id FROM virtual_interfaces v"
        " JOIN instances i ON i.uuid = v.instance_uuid"
        " JOIN fixed_ips f ON f.virtual_interface_id = v.id WHERE v.uuid = $1", port_id)
    return None if row is None else PortAddress(str(row["address"]), row["project_id"])


async def project_usage(db: Executor, project_id: str) -> NetworkUsage:
    return NetworkUsage(
        floating_ips=int(await db.fetchval(
            "SELECT count(*) FROM floating_ips WHERE project_id = $1", project_id) or 0),
        networks=int(await db.fetchval(
            "SELECT count(*) FROM networks WHERE deleted = 0 AND project_id = $1", project_id)
            or 0),
        ports=int(await db.fetchval(
            "SELECT count(*) FROM virtual_interfaces v JOIN instances i ON i.uuid ="
            " v.instance_uuid WHERE i.project_id = $1", project_id) or 0))


async def first_fixed_address(db: Executor, instance_uuid: str) -> str | None:
    """The server's first allocated fixed IP (addFloatingIp without a fixed_address)."""
    value = await db.fetchval(
        "SELECT address FROM fixed_ips WHERE instance_uuid = $1 AND allocated = 1 ORDER BY id",
        instance_uuid)
    return None if value is None else str(value)


async def floating_address_by_id(db: Executor, floating_id: int, project_id: str) -> str | None:
    """A project's floating IP by its row id (EC2's ``eipassoc-`` association ids)."""
    value = await db.fetchval("SELECT address FROM floating_ips WHERE id = $1"
                              " AND project_id = $2", floating_id, project_id)
    return None if value is None else str(value)


# ----- the network service ------------------------------------------------------------------

async def allocated_fixed_ip(db: Executor, address: str) -> dict[str, Any] | None:
    """An allocated fixed IP's row with its server's project (``instance_project``)."""
    return await db.fetchrow(
        "SELECT f.*, i.project_id AS instance_project FROM fixed_ips f"
        " JOIN instances i ON i.uuid = f.instance_uuid WHERE f.address = $1 AND f.allocated = 1",
        address)


async def mark_auto_assigned(db: Executor, floating_id: int) -> None:
    await db.execute("UPDATE floating_ips SET auto_assigned = 1 WHERE id = $1", floating_id)


async def project_hosts(db: Executor, project_id: str) -> set[str]:
    """The hosts with a fixed IP of one of the project's servers."""
    return {r["host"] for r in await db.fetch(
        "SELECT DISTINCT f.host FROM fixed_ips f JOIN instances i ON i.uuid = f.instance_uuid"
        " WHERE i.project_id = $1 AND f.host IS NOT NULL", project_id)}


async def fixed_ip_host(db: Executor, fixed_ip_id: int) -> str | None:
    value = await db.fetchval("SELECT host FROM fixed_ips WHERE id = $1", fixed_ip_id)
    return None if value is None else str(value)


async def lease_hosts(db: Executor, address: str) -> LeaseHosts | None:
    row = await db.fetchrow(
        "SELECT f.host, n.host AS gateway_host FROM fixed_ips f JOIN networks n"
        " ON n.id = f.network_id WHERE f.address = $1", address)
    return None if row is None else LeaseHosts(row["host"], row["gateway_host"])


async def orphaned_instances(db: Executor) -> list[str]:
    """Servers with interfaces that are deleted or gone (deleted without their host)."""
    return [r["instance_uuid"] for r in await db.fetch(
        "SELECT DISTINCT v.instance_uuid FROM virtual_interfaces v LEFT JOIN instances i"
        " ON i.uuid = v.instance_uuid WHERE i.uuid IS NULL OR i.deleted != 0")]


# ----- the metadata service -----------------------------------------------------------------

_INSTANCE_COLUMNS = (
    "SELECT i.*, f.address AS fixed_address, v.address AS mac, n.host AS network_host,"
    " (SELECT min(fl.address) FROM floating_ips fl WHERE fl.fixed_ip_id = f.id) AS floating"
    " FROM fixed_ips f JOIN instances i ON i.uuid = f.instance_uuid"
    " JOIN networks n ON n.id = f.network_id"
    " LEFT JOIN virtual_interfaces v ON v.id = f.virtual_interface_id")
_LIVE = " AND f.allocated = 1 AND i.deleted = 0 ORDER BY f.id LIMIT 1"


@dataclass(frozen=True)
class MetadataInstance:
    """A live server as the metadata service answers for it: the instance and its first NIC."""

    instance: Instance
    fixed_address: str
    mac: str | None
    network_host: str | None  # the gateway host of the NIC's network
    floating: str | None


def _metadata_instance(row: dict[str, Any] | None) -> MetadataInstance | None:
    if row is None:
        return None
    return MetadataInstance(instance=instance_from_row(row), fixed_address=row["fixed_address"],
                            mac=row["mac"], network_host=row["network_host"],
                            floating=row["floating"])


async def metadata_instance_by_uuid(db: Executor, instance_uuid: str) -> MetadataInstance | None:
    """The live server with its first fixed IP, MAC, gateway host and floating IP."""
    return _metadata_instance(
        await db.fetchrow(f"{_INSTANCE_COLUMNS} WHERE i.uuid = $1{_LIVE}", instance_uuid))


async def metadata_instance_by_address(db: Executor, address: str) -> MetadataInstance | None:
    """As ``metadata_instance_by_uuid``, for the server holding a fixed IP."""
    return _metadata_instance(
        await db.fetchrow(f"{_INSTANCE_COLUMNS} WHERE f.address = $1{_LIVE}", address))


# ----- a host's desired network state -------------------------------------------------------

async def host_networks(db: Executor, host: str) -> list[dict[str, Any]]:
    """The networks a host serves (gateway host) or has guests on, as rows."""
    return await db.fetch(
        "SELECT * FROM networks WHERE deleted = 0 AND (host = $1 OR id IN"
        " (SELECT network_id FROM fixed_ips WHERE host = $1)) ORDER BY id", host)


async def host_floating_ips(db: Executor, host: str) -> list[HostFloatingIp]:
    return [HostFloatingIp(r["address"], r["interface"], r["fixed_address"]) for r in await db.fetch(
        "SELECT fl.address, fl.interface, f.address AS fixed_address FROM floating_ips fl"
        " JOIN fixed_ips f ON f.id = fl.fixed_ip_id WHERE f.host = $1 ORDER BY fl.id", host)]


async def host_guest_addresses(db: Executor, host: str, by_interface: bool = False
                               ) -> list[GuestAddress]:
    """A host's allocated fixed IPs with their interfaces, by fixed IP (``by_interface``: by
    interface, then fixed IP)."""
    order = "v.id, f.id" if by_interface else "f.id"
    return [GuestAddress(r["uuid"], r["instance_uuid"], r["mac"], r["bridge"], r["address"])
            for r in await db.fetch(
                "SELECT v.uuid, f.instance_uuid, v.address AS mac, n.bridge, f.address"
                " FROM fixed_ips f JOIN virtual_interfaces v ON v.id = f.virtual_interface_id"
                " JOIN networks n ON n.id = f.network_id WHERE f.host = $1 AND f.allocated = 1"
                f" ORDER BY {order}", host)]


async def dhcp_entries(db: Executor, network_id: int) -> list[DhcpEntry]:
    return [DhcpEntry(r["address"], r["mac"], r["hostname"], r["uuid"], r["project_id"])
            for r in await db.fetch(
                "SELECT f.address, v.address AS mac, i.hostname, i.uuid, i.project_id"
                " FROM fixed_ips f JOIN virtual_interfaces v ON v.id = f.virtual_interface_id"
                " JOIN instances i ON i.uuid = f.instance_uuid"
                " WHERE f.network_id = $1 AND f.allocated = 1 ORDER BY f.id", network_id)]


# ----- the default networks and `cloudd manage network list` --------------------------------

@dataclass(frozen=True)
class PoolAddress:
    """A floating IP as the pool listing shows it."""
    pool: str
    address: str
    interface: str | None
    project_id: str | None
    fixed_ip_id: int | None


async def count_networks(db: Executor) -> int:
    return int(await db.fetchval("SELECT count(*) FROM networks WHERE deleted = 0") or 0)


async def network_cidrs(db: Executor) -> list[str]:
    return [r["cidr"] for r in await db.fetch("SELECT cidr FROM networks WHERE deleted = 0")]


async def pool_size(db: Executor, pool: str) -> int:
    return int(await db.fetchval(
        "SELECT count(*) FROM floating_ips WHERE pool = $1", pool) or 0)


async def project_has_usable_network(db: Executor, project_id: str, vlan: bool) -> bool:
    """A network the project may use: its own, or a shared one (VLAN mode: a free VLAN
    network it would take; the other managers: a shared flat one)."""
    if vlan:
        usable = "project_id = $1 OR (project_id IS NULL AND vlan IS NOT NULL)"
    else:
        usable = "(project_id = $1 OR project_id IS NULL) AND vlan IS NULL"
    return bool(await db.fetchval(
        f"SELECT count(*) FROM networks WHERE deleted = 0 AND ({usable})", project_id))


async def fixed_ip_counts(db: Executor) -> dict[int, tuple[int, int]]:
    """network id -> (addresses in use, addresses free), reserved ones in neither."""
    rows = await db.fetch(
        "SELECT network_id, sum(CASE WHEN instance_uuid IS NOT NULL THEN 1 ELSE 0 END) AS used,"
        " sum(CASE WHEN instance_uuid IS NULL AND reserved = 0 THEN 1 ELSE 0 END) AS free"
        " FROM fixed_ips GROUP BY network_id")
    return {int(r["network_id"]): (int(r["used"] or 0), int(r["free"] or 0)) for r in rows}


async def pool_addresses(db: Executor) -> list[PoolAddress]:
    """Every floating IP, by pool then creation."""
    return [PoolAddress(r["pool"], r["address"], r["interface"], r["project_id"],
                        r["fixed_ip_id"]) for r in await db.fetch(
        "SELECT pool, address, interface, project_id, fixed_ip_id"
        " FROM floating_ips ORDER BY pool, id")]
