"""The network repository's allocation statements: networks and their fixed IPs as
``nova-manage network create`` makes them, a server's virtual interfaces and fixed IPs taken and
given back, the DHCP leases. The rules (subnets, VLANs, which networks a server gets, the first
address past ``dhcp_start``, when an address is free again) stay in ``cloudd.network.ipam``.

Network rows are still dicts (transitional: the API views and ``NetworkSpec`` take them).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from cloudd.db import Executor


@dataclass(frozen=True)
class FreeFixedIp:
    id: int
    address: str


@dataclass(frozen=True)
class VifNetwork:
    """A server's virtual interface with its network and fixed IP (what ``network_info`` is
    made of)."""
    vif_id: str
    mac: str
    ip: str | None
    network_id: str  # the network's uuid
    label: str
    bridge: str
    cidr: str
    gateway: str
    netmask: str
    vlan: int | None
    dns1: str | None
    dns2: str | None


# ----- networks -----------------------------------------------------------------------------

async def used_vlans(db: Executor) -> set[int | None]:
    return {r["vlan"] for r in await db.fetch("SELECT vlan FROM networks WHERE deleted = 0")}


async def insert_network(db: Executor, values: dict[str, Any]) -> dict[str, Any]:
    """A new network row from its column values (``DuplicateError``: its CIDR is taken)."""
    cols = ", ".join(values)
    marks = ", ".join(f"${i}" for i in range(1, len(values) + 1))
    row = await db.fetchrow(f"INSERT INTO networks ({cols}) VALUES ({marks}) RETURNING *",
                            *values.values())
    assert row is not None
    return row


async def insert_fixed_ips(db: Executor, network_id: int, addresses: list[tuple[str, bool]],
                           now: float) -> None:
    """A network's addresses, each with whether it is reserved."""
    for address, reserved in addresses:
        await db.execute(
            "INSERT INTO fixed_ips (address, network_id, reserved, created_at)"
            " VALUES ($1, $2, $3, $4)", address, network_id, int(reserved), now)


async def list_networks(db: Executor, project_id: str | None = None) -> list[dict[str, Any]]:
    """Every live network, or those a project sees (its own and the shared ones), by id."""
    if project_id is None:
        return await db.fetch("SELECT * FROM networks WHERE deleted = 0 ORDER BY id")
    return await db.fetch(
        "SELECT * FROM networks WHERE deleted = 0 AND (project_id IS NULL OR project_id = $1)"
        " ORDER BY id", project_id)


async def get_network(db: Executor, key: str | int) -> dict[str, Any] | None:
    """A live network by id (an int) or uuid."""
    column = "id" if isinstance(key, int) else "uuid"
    return await db.fetchrow(f"SELECT * FROM networks WHERE deleted = 0 AND {column} = $1", key)


async def project_vlan_networks(db: Executor, project_id: str) -> list[dict[str, Any]]:
    return await db.fetch(
        "SELECT * FROM networks WHERE deleted = 0 AND project_id = $1 ORDER BY id", project_id)


async def shared_flat_networks(db: Executor, project_id: str) -> list[dict[str, Any]]:
    """The project's own and the shared networks without a VLAN."""
    return await db.fetch(
        "SELECT * FROM networks WHERE deleted = 0 AND vlan IS NULL"
        " AND (project_id IS NULL OR project_id = $1) ORDER BY id", project_id)


async def free_vlan_network_ids(db: Executor) -> list[int]:
    """VLAN networks no project has taken yet, by id."""
    return [int(r["id"]) for r in await db.fetch(
        "SELECT id FROM networks WHERE deleted = 0 AND vlan IS NOT NULL AND project_id IS NULL"
        " ORDER BY id")]


async def take_network(db: Executor, network_id: int, project_id: str) -> bool:
    """The network is the project's if still free (False: another project took it first)."""
    return bool(await db.execute(
        "UPDATE networks SET project_id = $1 WHERE id = $2 AND project_id IS NULL",
        project_id, network_id))


async def set_gateway_host(db: Executor, network_id: int, host: str) -> None:
    """The network's first guest host serves it, unless one already does."""
    await db.execute("UPDATE networks SET host = $1 WHERE id = $2 AND host IS NULL",
                     host, network_id)


# ----- a server's interfaces and fixed IPs --------------------------------------------------

async def has_interfaces(db: Executor, instance_uuid: str) -> bool:
    return bool(await db.fetchval(
        "SELECT count(*) FROM virtual_interfaces WHERE instance_uuid = $1", instance_uuid))


async def move_to_host(db: Executor, instance_uuid: str, host: str | None) -> None:
    """The instance's allocated fixed IPs are served by `host` (None: by no host, offloaded)."""
    await db.execute("UPDATE fixed_ips SET host = $1 WHERE instance_uuid = $2 AND allocated = 1",
                     host, instance_uuid)


async def insert_interface(db: Executor, vif_uuid: str, mac: str, instance_uuid: str,
                           network_id: int, now: float) -> int:
    """A new virtual interface's id (``DuplicateError``: that MAC is taken)."""
    row = await db.fetchrow(
        "INSERT INTO virtual_interfaces (uuid, address, instance_uuid, network_id, created_at)"
        " VALUES ($1, $2, $3, $4, $5) RETURNING id", vif_uuid, mac, instance_uuid, network_id,
        now)
    assert row is not None
    return int(row["id"])


async def free_fixed_ips(db: Executor, network_id: int) -> list[FreeFixedIp]:
    """The network's unreserved addresses no server holds, by id."""
    return [FreeFixedIp(int(r["id"]), r["address"]) for r in await db.fetch(
        "SELECT id, address FROM fixed_ips WHERE network_id = $1 AND reserved = 0"
        " AND instance_uuid IS NULL ORDER BY id", network_id)]


async def take_fixed_ip(db: Executor, fixed_ip_id: int, instance_uuid: str, vif_id: int,
                        host: str, now: float) -> bool:
    """The address is the server's if still free (False: another build took it first)."""
    return bool(await db.execute(
        "UPDATE fixed_ips SET instance_uuid = $1, virtual_interface_id = $2, allocated = 1,"
        " host = $3, updated_at = $4 WHERE id = $5 AND instance_uuid IS NULL",
        instance_uuid, vif_id, host, now, fixed_ip_id))


async def deallocate(db: Executor, instance_uuid: str, now: float) -> None:
    """A deleted server's addresses: its auto-assigned floating IPs back to the pool, the
    others unlinked; its fixed IPs no longer allocated (and free at once unless leased); its
    interfaces gone."""
    await db.execute(
        "UPDATE floating_ips SET project_id = NULL, host = NULL, auto_assigned = 0"
        " WHERE auto_assigned = 1 AND fixed_ip_id IN"
        " (SELECT id FROM fixed_ips WHERE instance_uuid = $1)", instance_uuid)
    await db.execute(
        "UPDATE floating_ips SET fixed_ip_id = NULL, updated_at = $1 WHERE fixed_ip_id IN"
        " (SELECT id FROM fixed_ips WHERE instance_uuid = $2)", now, instance_uuid)
    await db.execute(
        "UPDATE fixed_ips SET allocated = 0, virtual_interface_id = NULL, updated_at = $1"
        " WHERE instance_uuid = $2", now, instance_uuid)
    await db.execute(
        "UPDATE fixed_ips SET instance_uuid = NULL, host = NULL WHERE instance_uuid = $1"
        " AND leased = 0", instance_uuid)
    await db.execute("DELETE FROM virtual_interfaces WHERE instance_uuid = $1", instance_uuid)


async def interfaces(db: Executor, instance_uuid: str) -> list[VifNetwork]:
    """The server's interfaces with their networks and fixed IPs, by creation."""
    return [VifNetwork(**r) for r in await db.fetch(
        "SELECT v.uuid AS vif_id, v.address AS mac, f.address AS ip, n.uuid AS network_id,"
        " n.label, n.bridge, n.cidr, n.gateway, n.netmask, n.vlan, n.dns1, n.dns2"
        " FROM virtual_interfaces v JOIN networks n ON n.id = v.network_id"
        " LEFT JOIN fixed_ips f ON f.virtual_interface_id = v.id"
        " WHERE v.instance_uuid = $1 ORDER BY v.id", instance_uuid)]


async def floating_addresses_of(db: Executor, fixed_address: str | None) -> list[str]:
    """The floating IPs linked to a fixed IP, by creation."""
    return [r["address"] for r in await db.fetch(
        "SELECT fl.address FROM floating_ips fl JOIN fixed_ips f ON f.id = fl.fixed_ip_id"
        " WHERE f.address = $1 ORDER BY fl.id", fixed_address)]


# ----- DHCP leases --------------------------------------------------------------------------

async def mark_leased(db: Executor, address: str) -> bool:
    """dnsmasq handed out an address a server holds (False: none holds it)."""
    return bool(await db.execute(
        "UPDATE fixed_ips SET leased = 1, updated_at = $1 WHERE address = $2"
        " AND instance_uuid IS NOT NULL", time.time(), address))


async def mark_released(db: Executor, address: str) -> bool:
    """The lease ended: an address no longer allocated is free again (False: no such
    address)."""
    changed = await db.execute(
        "UPDATE fixed_ips SET leased = 0, updated_at = $1 WHERE address = $2", time.time(), address)
    await db.execute(
        "UPDATE fixed_ips SET instance_uuid = NULL, host = NULL WHERE address = $1 AND allocated = 0",
        address)
    return bool(changed)


async def disassociate_unleased_before(db: Executor, cutoff: float) -> int:
    """Deallocated addresses not updated since ``cutoff`` whose lease never ended: free."""
    return await db.execute(
        "UPDATE fixed_ips SET instance_uuid = NULL, host = NULL, leased = 0 WHERE allocated = 0"
        " AND instance_uuid IS NOT NULL AND updated_at < $1", cutoff)
