"""IP address management in the controller's database: networks, fixed IPs, virtual interfaces.

Nova's nova-network model (``nova/network/manager.py``): ``create_networks`` carves subnets and
bulk-inserts their addresses (network, gateway and broadcast reserved; VLAN mode also reserves the
cloudpipe ``.2``); ``allocate_for_instance`` takes the first free address of each of the
instance's networks and a fresh ``fa:16:3e`` MAC; deallocation only clears ``allocated`` — the
address is disassociated when DHCP releases it (or after a timeout), so a guest still holding
its lease never sees its address reused.
"""

from __future__ import annotations

import ipaddress
import random
import time
import uuid as uuidlib
from typing import Any

from cloudd.db import Database, DuplicateError, Executor
from cloudd.network.antispoof import device_name
from cloudd.network.errors import NetworkError as NetworkError

FLAT, FLAT_DHCP, VLAN = "FlatManager", "FlatDHCPManager", "VLANManager"


class NoMoreFixedIps(NetworkError):
    pass


class NoNetworkAvailable(NetworkError):
    pass


def _subnets(cidr: str, num_networks: int, network_size: int) -> list[ipaddress.IPv4Network]:
    whole = ipaddress.ip_network(cidr, strict=False)
    prefix = 32 - max(2, (network_size - 1).bit_length())
    if prefix < whole.prefixlen:
        raise NetworkError(f"network_size {network_size} does not fit in {cidr}")
    subnets = list(whole.subnets(new_prefix=prefix))[:num_networks]
    if len(subnets) < num_networks:
        raise NetworkError(f"{cidr} holds only {len(subnets)} networks of {network_size} addresses")
    return [ipaddress.IPv4Network(s) for s in subnets]


async def create_networks(
    db: Database, manager: str, label: str, cidr: str, num_networks: int = 1,
    network_size: int = 256, bridge: str = "", bridge_interface: str = "", vlan_start: int = 100,
    project_id: str | None = None, dns1: str | None = None, dns2: str | None = None,
    multi_host: bool = False,
) -> list[dict[str, Any]]:
    """``nova-manage network create``: one row per subnet, all its addresses in ``fixed_ips``."""
    if manager in (FLAT, FLAT_DHCP) and not bridge:
        raise NetworkError(f"{manager} networks need a bridge")
    if manager == VLAN and vlan_start + num_networks > 4094:
        raise NetworkError("vlan_start + num_networks must not exceed 4094")
    created = []
    now = time.time()
    async with db.transaction() as tx:
        used_vlans = {r["vlan"] for r in await tx.fetch("SELECT vlan FROM networks WHERE deleted = 0")}
        vlan = vlan_start
        for index, net in enumerate(_subnets(cidr, num_networks, network_size)):
            hosts = list(net.hosts())
            values: dict[str, Any] = {
                "uuid": str(uuidlib.uuid4()),
                "label": label if num_networks == 1 else f"{label}_{index}",
                "cidr": str(net), "netmask": str(net.netmask), "broadcast": str(net.broadcast_address),
                "gateway": str(hosts[0]), "dhcp_start": str(hosts[1]), "bridge": bridge,
                "bridge_interface": bridge_interface or None, "vlan": None,
                "multi_host": int(multi_host), "dns1": dns1, "dns2": dns2,
                "project_id": project_id, "created_at": now,
            }
            reserved = {net.network_address, hosts[0], net.broadcast_address}
            if manager == VLAN:
                while vlan in used_vlans:
                    vlan += 1
                used_vlans.add(vlan)
                values.update(vlan=vlan, bridge=f"br{vlan}", dhcp_start=str(hosts[2]))
                reserved.add(hosts[1])  # Nova's cloudpipe VPN address
            try:
                row = await _insert(tx, "networks", values)
            except DuplicateError:
                raise NetworkError(f"a network with CIDR {net} already exists") from None
            await _insert_fixed_ips(tx, row["id"], net, reserved, now)
            created.append(row)
    return created


async def _insert(tx: Executor, table: str, values: dict[str, Any]) -> dict[str, Any]:
    cols = ", ".join(values)
    marks = ", ".join(f"${i}" for i in range(1, len(values) + 1))
    row = await tx.fetchrow(f"INSERT INTO {table} ({cols}) VALUES ({marks}) RETURNING *", *values.values())
    assert row is not None
    return row


async def _insert_fixed_ips(tx: Executor, network_id: int, net: ipaddress.IPv4Network,
                            reserved: set[Any], now: float) -> None:
    for address in net:
        await tx.execute(
            "INSERT INTO fixed_ips (address, network_id, reserved, created_at) VALUES ($1, $2, $3, $4)",
            str(address), network_id, int(address in reserved), now,
        )


async def list_networks(db: Executor, project_id: str | None = None) -> list[dict[str, Any]]:
    if project_id is None:
        return await db.fetch("SELECT * FROM networks WHERE deleted = 0 ORDER BY id")
    return await db.fetch(
        "SELECT * FROM networks WHERE deleted = 0 AND (project_id IS NULL OR project_id = $1)"
        " ORDER BY id", project_id)


async def get_network(db: Executor, key: str | int) -> dict[str, Any] | None:
    column = "id" if isinstance(key, int) else "uuid"
    return await db.fetchrow(f"SELECT * FROM networks WHERE deleted = 0 AND {column} = $1", key)


async def networks_for_instance(db: Executor, manager: str, project_id: str,
                                requested: list[str] | None) -> list[dict[str, Any]]:
    """The networks a new instance is plugged into (Nova's ``_get_networks_for_instance``);
    none while the cloud has no network at all (a lab without networking, or the fake driver)."""
    if not await db.fetchval("SELECT count(*) FROM networks WHERE deleted = 0"):
        return []
    if manager == VLAN:
        nets = await db.fetch(
            "SELECT * FROM networks WHERE deleted = 0 AND project_id = $1 ORDER BY id", project_id)
        if not nets:
            nets = [await _associate_project(db, project_id)]
    else:
        nets = await db.fetch(
            "SELECT * FROM networks WHERE deleted = 0 AND vlan IS NULL ORDER BY id")
    if requested:
        nets = [n for n in nets if n["uuid"] in requested]
        if not nets:
            raise NoNetworkAvailable(f"network(s) {', '.join(requested)} not available to the project")
    if not nets:
        raise NoNetworkAvailable("no network is available to the project")
    return nets


async def _associate_project(db: Executor, project_id: str) -> dict[str, Any]:
    """VLANManager: the first use by a project takes a free network (``network_associate``)."""
    for candidate in await db.fetch(
            "SELECT id FROM networks WHERE deleted = 0 AND vlan IS NOT NULL AND project_id IS NULL"
            " ORDER BY id"):
        taken = await db.execute(
            "UPDATE networks SET project_id = $1 WHERE id = $2 AND project_id IS NULL",
            project_id, candidate["id"])
        if taken:
            row = await get_network(db, int(candidate["id"]))
            assert row is not None
            return row
    raise NoNetworkAvailable("no free VLAN network left for the project")


def random_mac() -> str:
    return "fa:16:3e:" + ":".join(f"{random.randint(0, 255):02x}" for _ in range(3))


async def allocate_for_instance(db: Database, manager: str, instance: dict[str, Any], host: str,
                                requested: list[str] | None = None) -> list[dict[str, Any]]:
    """A MAC and a fixed IP on each of the instance's networks; returns its network_info."""
    if await db.fetchval("SELECT count(*) FROM virtual_interfaces WHERE instance_uuid = $1",
                         instance["uuid"]):
        return await network_info(db, instance["uuid"])  # a rescheduled build keeps its addresses
    async with db.transaction() as tx:
        for net in await networks_for_instance(tx, manager, instance["project_id"], requested):
            await _allocate_on(tx, net, instance["uuid"], host)
    return await network_info(db, instance["uuid"])


async def _allocate_on(tx: Executor, net: dict[str, Any], instance_uuid: str, host: str) -> None:
    now = time.time()
    for _ in range(10):
        try:
            vif = await _insert(tx, "virtual_interfaces", {
                "uuid": str(uuidlib.uuid4()), "address": random_mac(),
                "instance_uuid": instance_uuid, "network_id": net["id"], "created_at": now})
            break
        except DuplicateError:
            continue  # the same random MAC twice: draw again
    else:
        raise NetworkError("cannot draw a unique MAC address")
    free = await tx.fetch(
        "SELECT id, address FROM fixed_ips WHERE network_id = $1 AND reserved = 0"
        " AND instance_uuid IS NULL ORDER BY id", net["id"])
    for row in free:
        if ipaddress.IPv4Address(row["address"]) < ipaddress.IPv4Address(net["dhcp_start"]):
            continue
        taken = await tx.execute(
            "UPDATE fixed_ips SET instance_uuid = $1, virtual_interface_id = $2, allocated = 1,"
            " host = $3, updated_at = $4 WHERE id = $5 AND instance_uuid IS NULL",
            instance_uuid, vif["id"], host, now, row["id"])
        if taken:
            break
    else:
        raise NoMoreFixedIps(f"no fixed IP left in network {net['label']} ({net['cidr']})")
    if not net["host"]:
        await tx.execute("UPDATE networks SET host = $1 WHERE id = $2 AND host IS NULL", host, net["id"])


async def deallocate_for_instance(db: Database, instance_uuid: str) -> list[dict[str, Any]]:
    """Instance deleted: addresses stop being allocated (and are disassociated at once when no
    lease holds them), floating IPs are unlinked, VIFs go. Returns the network_info it had."""
    info = await network_info(db, instance_uuid)
    now = time.time()
    async with db.transaction() as tx:
        await tx.execute(
            "UPDATE floating_ips SET fixed_ip_id = NULL, updated_at = $1 WHERE fixed_ip_id IN"
            " (SELECT id FROM fixed_ips WHERE instance_uuid = $2)", now, instance_uuid)
        await tx.execute(
            "UPDATE fixed_ips SET allocated = 0, virtual_interface_id = NULL, updated_at = $1"
            " WHERE instance_uuid = $2", now, instance_uuid)
        await tx.execute(
            "UPDATE fixed_ips SET instance_uuid = NULL, host = NULL WHERE instance_uuid = $1"
            " AND leased = 0", instance_uuid)
        await tx.execute("DELETE FROM virtual_interfaces WHERE instance_uuid = $1", instance_uuid)
        await tx.execute("DELETE FROM security_group_instance_association WHERE instance_uuid = $1",
                         instance_uuid)
    return info


async def lease_fixed_ip(db: Executor, address: str) -> bool:
    """dnsmasq handed the address out (``nova-dhcpbridge add``)."""
    return bool(await db.execute(
        "UPDATE fixed_ips SET leased = 1, updated_at = $1 WHERE address = $2 AND instance_uuid IS NOT NULL",
        time.time(), address))


async def release_fixed_ip(db: Executor, address: str) -> bool:
    """The lease ended (``nova-dhcpbridge del``): an address no longer allocated is free again."""
    changed = await db.execute(
        "UPDATE fixed_ips SET leased = 0, updated_at = $1 WHERE address = $2", time.time(), address)
    await db.execute(
        "UPDATE fixed_ips SET instance_uuid = NULL, host = NULL WHERE address = $1 AND allocated = 0",
        address)
    return bool(changed)


async def disassociate_stale(db: Executor, older_than: float) -> int:
    """Nova's ``_disassociate_stale_fixed_ips``: deallocated addresses whose lease never ended."""
    return await db.execute(
        "UPDATE fixed_ips SET instance_uuid = NULL, host = NULL, leased = 0 WHERE allocated = 0"
        " AND instance_uuid IS NOT NULL AND updated_at < $1", time.time() - older_than)


async def network_info(db: Executor, instance_uuid: str) -> list[dict[str, Any]]:
    """One entry per NIC, what drivers plug and the API shows: bridge, MAC, fixed and floating IPs."""
    rows = await db.fetch(
        "SELECT v.uuid AS vif_id, v.address AS mac, f.address AS ip, n.uuid AS network_id,"
        " n.label, n.bridge, n.cidr, n.gateway, n.netmask, n.vlan, n.dns1, n.dns2"
        " FROM virtual_interfaces v JOIN networks n ON n.id = v.network_id"
        " LEFT JOIN fixed_ips f ON f.virtual_interface_id = v.id"
        " WHERE v.instance_uuid = $1 ORDER BY v.id", instance_uuid)
    info = []
    for row in rows:
        floating = await db.fetch(
            "SELECT fl.address FROM floating_ips fl JOIN fixed_ips f ON f.id = fl.fixed_ip_id"
            " WHERE f.address = $1 ORDER BY fl.id", row["ip"])
        entry = {k: row[k] for k in ("vif_id", "mac", "ip", "network_id", "label", "bridge", "cidr",
                                     "gateway", "netmask", "vlan")}
        entry["prefixlen"] = ipaddress.ip_network(row["cidr"]).prefixlen
        entry["dns"] = [d for d in (row["dns1"], row["dns2"]) if d]
        entry["floating_ips"] = [f["address"] for f in floating]
        entry["devname"] = device_name(row["vif_id"])  # the tap the host's anti-spoofing rules name
        info.append(entry)
    return info
