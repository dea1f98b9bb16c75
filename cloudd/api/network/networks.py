"""/v2.0/networks, /subnets and /ports: nova-network's networks (one subnet each), its floating
IP pools as external networks, and one port per virtual interface of a server."""

from __future__ import annotations

import ipaddress
from typing import Any

from aiohttp import web

from cloudd.api.network.common import (
    find,
    isotime,
    item_response,
    list_response,
    network_api,
    pool_network_id,
    reader_project,
    subnet_id,
)
from cloudd.network import ipam, store
from cloudd.network.api import NetworkAPI
from cloudd.network.store.networks import Network

AZ = "nova"


def _common(item_id: str, name: str, project_id: str, created_at: float | None) -> dict[str, Any]:
    return {"id": item_id, "name": name, "project_id": project_id, "tenant_id": project_id,
            "description": "", "tags": [], "created_at": isotime(created_at),
            "updated_at": isotime(created_at), "revision_number": 1}


def network_view(net: Network, manager: str) -> dict[str, Any]:
    kind = "vlan" if net.vlan is not None else "flat"
    return {**_common(net.uuid, net.label, net.project_id or "", net.created_at),
            "status": "ACTIVE", "admin_state_up": True, "shared": net.project_id is None,
            "router:external": False, "subnets": [subnet_id(net.uuid)], "mtu": 1500,
            "availability_zones": [AZ], "availability_zone_hints": [],
            "port_security_enabled": True, "provider:network_type": kind,
            "provider:physical_network": None, "provider:segmentation_id": net.vlan,
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


def subnet_view(net: Network, manager: str) -> dict[str, Any]:
    last = ipaddress.ip_network(net.cidr).broadcast_address - 1
    return {**_common(subnet_id(net.uuid), f"{net.label}-subnet", net.project_id or "",
                      net.created_at),
            "network_id": net.uuid, "ip_version": 4, "cidr": net.cidr,
            "gateway_ip": net.gateway, "enable_dhcp": manager != ipam.FLAT,
            "allocation_pools": [{"start": net.dhcp_start, "end": str(last)}],
            "dns_nameservers": [d for d in (net.dns1, net.dns2) if d], "host_routes": [],
            "subnetpool_id": None, "ipv6_address_mode": None, "ipv6_ra_mode": None,
            "service_types": [], "segment_id": None}


async def pool_networks(api: NetworkAPI) -> list[dict[str, Any]]:
    return [pool_view(pool) for pool in await api.floating_pools()]


async def _network_items(request: web.Request) -> list[dict[str, Any]]:
    api = network_api(request)
    nets = await api.networks(reader_project(request))
    return [network_view(n, api.manager_name) for n in nets] + await pool_networks(api)


async def list_networks(request: web.Request) -> web.Response:
    return list_response(request, "networks", await _network_items(request))


async def show_network(request: web.Request) -> web.Response:
    item = find(await _network_items(request), request.match_info["id"], "NetworkNotFound",
                "Network")
    return item_response(request, "network", item)


async def _subnet_items(request: web.Request) -> list[dict[str, Any]]:
    api = network_api(request)
    nets = await api.networks(reader_project(request))
    return [subnet_view(n, api.manager_name) for n in nets]


async def list_subnets(request: web.Request) -> web.Response:
    return list_response(request, "subnets", await _subnet_items(request))


async def show_subnet(request: web.Request) -> web.Response:
    item = find(await _subnet_items(request), request.match_info["id"], "SubnetNotFound", "Subnet")
    return item_response(request, "subnet", item)


def port_view(nic: store.Nic, group_ids: list[str]) -> dict[str, Any]:
    fixed = [{"subnet_id": subnet_id(nic.network_uuid), "ip_address": nic.fixed_address}]
    return {**_common(nic.vif_id, "", nic.project_id, nic.created_at),
            "network_id": nic.network_uuid, "device_id": nic.instance_uuid,
            "device_owner": "compute:nova", "mac_address": nic.mac,
            "fixed_ips": fixed if nic.fixed_address else [], "status": "ACTIVE",
            "admin_state_up": True, "security_groups": group_ids, "allowed_address_pairs": [],
            "binding:host_id": nic.host or "", "binding:vnic_type": "normal",
            "port_security_enabled": True, "extra_dhcp_opts": []}


async def port_items(api: NetworkAPI, project_id: str | None,
                     instance_uuids: list[str] | None = None) -> list[dict[str, Any]]:
    return [port_view(p.nic, p.security_group_ids)
            for p in await api.ports(project_id, instance_uuids)]


async def list_ports(request: web.Request) -> web.Response:
    # ?device_id= is the common query (server add floating ip): narrow it in SQL.
    device_ids = request.query.getall("device_id", []) or None
    items = await port_items(network_api(request), reader_project(request), device_ids)
    return list_response(request, "ports", items)


async def show_port(request: web.Request) -> web.Response:
    items = await port_items(network_api(request), reader_project(request))
    return item_response(request, "port", find(items, request.match_info["id"], "PortNotFound",
                                               "Port"))


def add_routes(app: web.Application, prefix: str) -> None:
    for collection, listing, showing in (("networks", list_networks, show_network),
                                         ("subnets", list_subnets, show_subnet),
                                         ("ports", list_ports, show_port)):
        app.router.add_get(f"{prefix}/{collection}", listing)
        app.router.add_get(f"{prefix}/{collection}/{{id}}", showing)
