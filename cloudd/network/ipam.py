"""IP address management in the controller's database: networks, fixed IPs, virtual interfaces.

Nova's nova-network model (``nova/network/manager.py``): ``create_networks`` carves subnets and
bulk-inserts their addresses (network, gateway and broadcast reserved; VLAN mode also reserves the
cloudpipe ``.2``); ``allocate_for_instance`` takes the first free address of each of the
instance's networks and a fresh ``fa:16:3e`` MAC; deallocation only clears ``allocated`` — the
address is disassociated when DHCP releases it (or after a timeout), so a guest still holding
its lease never sees its address reused. The statements are the network repository's
(``cloudd.network.store.allocation``); the rules are here.
"""

from __future__ import annotations

import ipaddress
import random
import time
import uuid as uuidlib
from typing import Any

from cloudd import errors
from cloudd.db import Database, DuplicateError, Executor
from cloudd.network import store
from cloudd.network.store import allocation
from cloudd.network.store import secgroups as secgroup_store
from cloudd.rpc.contracts.instance import Instance
from cloudd.rpc.contracts.network import FLAT as FLAT
from cloudd.rpc.contracts.network import FLAT_DHCP as FLAT_DHCP
from cloudd.rpc.contracts.network import VLAN as VLAN
from cloudd.rpc.contracts.network import Vif, device_name
from cloudd.vocab.network_errors import NetworkError as NetworkError


class NoMoreFixedIps(errors.Conflict, NetworkError):
    pass


class NoNetworkAvailable(errors.BadRequest, NetworkError):
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
        used_vlans = await allocation.used_vlans(tx)
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
                row = await allocation.insert_network(tx, values)
            except DuplicateError:
                raise NetworkError(f"a network with CIDR {net} already exists") from None
            await allocation.insert_fixed_ips(
                tx, row["id"], [(str(address), address in reserved) for address in net], now)
            created.append(row)
    return created


async def list_networks(db: Executor, project_id: str | None = None) -> list[dict[str, Any]]:
    return await allocation.list_networks(db, project_id)


async def get_network(db: Executor, key: str | int) -> dict[str, Any] | None:
    return await allocation.get_network(db, key)


async def networks_for_instance(db: Executor, manager: str, project_id: str,
                                requested: list[str] | None) -> list[dict[str, Any]]:
    """The networks a new instance is plugged into (Nova's ``_get_networks_for_instance``);
    none while the cloud has no network at all (a lab without networking, or the fake driver)."""
    if not await store.count_networks(db):
        return []
    if manager == VLAN:
        nets = await allocation.project_vlan_networks(db, project_id)
        if not nets:
            nets = [await _associate_project(db, project_id)]
    else:  # Nova's project_only="allow_none": the project's own and the shared ones
        nets = await allocation.shared_flat_networks(db, project_id)
    if requested:
        nets = [n for n in nets if n["uuid"] in requested]
        if not nets:
            raise NoNetworkAvailable(f"network(s) {', '.join(requested)} not available to the project")
    if not nets:
        raise NoNetworkAvailable("no network is available to the project")
    return nets


async def _associate_project(db: Executor, project_id: str) -> dict[str, Any]:
    """VLANManager: the first use by a project takes a free network (``network_associate``)."""
    for candidate in await allocation.free_vlan_network_ids(db):
        if await allocation.take_network(db, candidate, project_id):
            row = await get_network(db, candidate)
            assert row is not None
            return row
    raise NoNetworkAvailable("no free VLAN network left for the project")


def random_mac() -> str:
    return "fa:16:3e:" + ":".join(f"{random.randint(0, 255):02x}" for _ in range(3))


async def allocate_for_instance(db: Database, manager: str, instance: Instance, host: str,
                                requested: list[str] | None = None) -> list[Vif]:
    """A MAC and a fixed IP on each of the instance's networks; returns its network_info."""
    if await allocation.has_interfaces(db, instance.uuid):
        # A rescheduled build or an unshelve keeps its addresses, served by its new host now.
        await allocation.move_to_host(db, instance.uuid, host)
        return await network_info(db, instance.uuid)
    async with db.transaction() as tx:
        for net in await networks_for_instance(tx, manager, instance.project_id, requested):
            await _allocate_on(tx, net, instance.uuid, host)
    return await network_info(db, instance.uuid)


async def _allocate_on(tx: Executor, net: dict[str, Any], instance_uuid: str, host: str) -> None:
    now = time.time()
    for _ in range(10):
        try:
            vif_id = await allocation.insert_interface(tx, str(uuidlib.uuid4()), random_mac(),
                                                  instance_uuid, net["id"], now)
            break
        except DuplicateError:
            continue  # the same random MAC twice: draw again
    else:
        raise NetworkError("cannot draw a unique MAC address")
    for free in await allocation.free_fixed_ips(tx, net["id"]):
        if ipaddress.IPv4Address(free.address) < ipaddress.IPv4Address(net["dhcp_start"]):
            continue
        if await allocation.take_fixed_ip(tx, free.id, instance_uuid, vif_id, host, now):
            break
    else:
        raise NoMoreFixedIps(f"no fixed IP left in network {net['label']} ({net['cidr']})")
    if not net["host"]:
        await allocation.set_gateway_host(tx, net["id"], host)


async def detach_from_host(db: Executor, instance_uuid: str) -> None:
    """An offloaded server: its addresses stay allocated to it, and no host serves them."""
    await allocation.move_to_host(db, instance_uuid, None)


async def deallocate_for_instance(db: Database, instance_uuid: str) -> list[Vif]:
    """Instance deleted: addresses stop being allocated (and are disassociated at once when no
    lease holds them), floating IPs are unlinked, VIFs go. Returns the network_info it had."""
    info = await network_info(db, instance_uuid)
    now = time.time()
    async with db.transaction() as tx:
        await allocation.deallocate(tx, instance_uuid, now)
        await secgroup_store.forget_instance(tx, instance_uuid)
    return info


async def lease_fixed_ip(db: Executor, address: str) -> bool:
    """dnsmasq handed the address out (``nova-dhcpbridge add``)."""
    return await allocation.mark_leased(db, address)


async def release_fixed_ip(db: Executor, address: str) -> bool:
    """The lease ended (``nova-dhcpbridge del``): an address no longer allocated is free again."""
    return await allocation.mark_released(db, address)


async def disassociate_stale(db: Executor, older_than: float) -> int:
    """Nova's ``_disassociate_stale_fixed_ips``: deallocated addresses whose lease never ended."""
    return await allocation.disassociate_unleased_before(db, time.time() - older_than)


async def network_info(db: Executor, instance_uuid: str) -> list[Vif]:
    """One entry per NIC, what a build hands the agent's driver: bridge, MAC, tap, fixed and
    floating IPs."""
    return [Vif(vif_id=vif.vif_id, mac=vif.mac, ip=vif.ip, network_id=vif.network_id,
                label=vif.label, bridge=vif.bridge, cidr=vif.cidr, gateway=vif.gateway,
                netmask=vif.netmask, vlan=vif.vlan,
                prefixlen=ipaddress.ip_network(vif.cidr).prefixlen,
                dns=[d for d in (vif.dns1, vif.dns2) if d],
                floating_ips=await allocation.floating_addresses_of(db, vif.ip),
                devname=device_name(vif.vif_id))  # the tap the host's anti-spoofing rules name
            for vif in await allocation.interfaces(db, instance_uuid)]
