"""/v2.0/networks, /subnets and /ports: nova-network's networks (one subnet each), its floating
IP pools as external networks, and one port per virtual interface of a server."""

from __future__ import annotations

import ipaddress
from typing import Any

from aiohttp import web

from cloudd.api.network import addresses
from cloudd.api.network.common import (
    database,
    find,
    isotime,
    item_response,
    list_response,
    network_service,
    pool_network_id,
    reader_project,
    subnet_id,
)
from cloudd.db import Executor
from cloudd.network import floating, ipam, secgroups

AZ = "nova"


def _common(item_id: str, name: str, project_id: str, created_at: float | None) -> dict[str, Any]:
    return {"id": item_id, "name": name, "project_id": project_id, "tenant_id": project_id,
            "description": "", "tags": [], "created_at": isotime(created_at),
            "updated_at": isotime(created_at), "revision_number": 1}


def network_view(row: dict[str, Any], manager: str) -> dict[str, Any]:
    kind = "vlan" if row["vlan"] is not None else "flat"
    return {**_common(row["uuid"], row["label"], row["project_id"] or "", row["created_at"]),
            "status": "ACTIVE", "admin_state_up": True, "shared": row["project_id"] is None,
            "router:external": False, "subnets": [subnet_id(row["uuid"])], "mtu": 1500,
            "availability_zones": [AZ], "availability_zone_hints": [],
            "port_security_enabled": True, "provider:network_type": kind,
            "provider:physical_network": None, "provider:segmentation_id": row["vlan"],
            "ipv4_address_scope": None, "ipv6_address_scope": None, "is_default": False}


def pool_view(pool: str) -> dict[str, Any]:
    """A floating IP pool: the external network ``floating ip create <pool>`` names."""
    return {**_common(pool_network_id(pool), pool, "", None),
            "status": "ACTIVE", "admin_state_up": True, "shared": False,
            "router:external": True, "subnets": [], "mtu": 1500, "availability_zones": [AZ],
            "availability_zone_hints": [], "port_security_enabled": True,
            "provider:network_type": "flat", "provider:physical_network": None,
            "provider:segmentation_id": None, "ipv4_address_scope": None,
            "ipv6_address_scope": None, "is_default": True}


def subnet_view(row: dict[str, Any], manager: str) -> dict[str, Any]:
    net = ipaddress.ip_network(row["cidr"])
    last = net.broadcast_address - 1
    return {**_common(subnet_id(row["uuid"]), f"{row['label']}-subnet", row["project_id"] or "",
                      row["created_at"]),
            "network_id": row["uuid"], "ip_version": 4, "cidr": row["cidr"],
            "gateway_ip": row["gateway"], "enable_dhcp": manager != ipam.FLAT,
            "allocation_pools": [{"start": row["dhcp_start"], "end": str(last)}],
            "dns_nameservers": [d for d in (row["dns1"], row["dns2"]) if d], "host_routes": [],
            "subnetpool_id": None, "ipv6_address_mode": None, "ipv6_ra_mode": None,
            "service_types": [], "segment_id": None}


async def visible_networks(db: Executor, project_id: str | None) -> list[dict[str, Any]]:
    """The networks a project may plug servers into (admins: all of them)."""
    return await ipam.list_networks(db, project_id)


async def pool_networks(db: Executor) -> list[dict[str, Any]]:
    return [pool_view(pool) for pool in await floating.list_pools(db)]


async def _network_items(request: web.Request) -> list[dict[str, Any]]:
    manager = network_service(request).manager_name
    rows = await visible_networks(database(request), reader_project(request))
    return [network_view(r, manager) for r in rows] + await pool_networks(database(request))


async def list_networks(request: web.Request) -> web.Response:
    return list_response(request, "networks", await _network_items(request))


async def show_network(request: web.Request) -> web.Response:
    item = find(await _network_items(request), request.match_info["id"], "NetworkNotFound",
                "Network")
    return item_response(request, "network", item)


async def _subnet_items(request: web.Request) -> list[dict[str, Any]]:
    manager = network_service(request).manager_name
    rows = await visible_networks(database(request), reader_project(request))
    return [subnet_view(r, manager) for r in rows]


async def list_subnets(request: web.Request) -> web.Response:
    return list_response(request, "subnets", await _subnet_items(request))


async def show_subnet(request: web.Request) -> web.Response:
    item = find(await _subnet_items(request), request.match_info["id"], "SubnetNotFound", "Subnet")
    return item_response(request, "subnet", item)


def port_view(nic: dict[str, Any], group_ids: list[str]) -> dict[str, Any]:
    fixed = [{"subnet_id": subnet_id(nic["network_uuid"]), "ip_address": nic["fixed_address"]}]
    return {**_common(nic["vif_id"], "", nic["project_id"], nic["created_at"]),
            "network_id": nic["network_uuid"], "device_id": nic["instance_uuid"],
            "device_owner": "compute:nova", "mac_address": nic["mac"],
            "fixed_ips": fixed if nic["fixed_address"] else [], "status": "ACTIVE",
            "admin_state_up": True, "security_groups": group_ids, "allowed_address_pairs": [],
            "binding:host_id": nic["host"] or "", "binding:vnic_type": "normal",
            "port_security_enabled": True, "extra_dhcp_opts": []}


async def port_items(db: Executor, project_id: str | None,
                     instance_uuids: list[str] | None = None) -> list[dict[str, Any]]:
    nics = await addresses.nics(db, instance_uuids, project_id)
    groups: dict[str, list[str]] = {}
    for nic in nics:
        uuid = nic["instance_uuid"]
        if uuid not in groups:
            groups[uuid] = [g["uuid"] for g in await secgroups.groups_of_instance(db, uuid)]
    return [port_view(nic, groups[nic["instance_uuid"]]) for nic in nics]


async def list_ports(request: web.Request) -> web.Response:
    # ?device_id= is the common query (server add floating ip): narrow it in SQL.
    device_ids = request.query.getall("device_id", []) or None
    items = await port_items(database(request), reader_project(request), device_ids)
    return list_response(request, "ports", items)


async def show_port(request: web.Request) -> web.Response:
    items = await port_items(database(request), reader_project(request))
    return item_response(request, "port", find(items, request.match_info["id"], "PortNotFound",
                                               "Port"))


def add_routes(app: web.Application, prefix: str) -> None:
    for collection, listing, showing in (("networks", list_networks, show_network),
                                         ("subnets", list_subnets, show_subnet),
                                         ("ports", list_ports, show_port)):
        app.router.add_get(f"{prefix}/{collection}", listing)
        app.router.add_get(f"{prefix}/{collection}/{{id}}", showing)
