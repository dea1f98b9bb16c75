"""Nova's proxies to the network model, as Nova served them below microversion 2.36
(os-floating-ips, os-floating-ip-pools, os-networks, os-security-groups, os-security-group-rules;
404 from 2.36), the addFloatingIp/removeFloatingIp actions (below 2.44) and the security group
actions and listing of a server (every version). The operations are NetworkAPI's, as the
Network API's and EC2's are; here Nova's bodies are read and its records and refusals written."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from cloudd.api.compute import network_proxies_groups, server_actions
from cloudd.api.compute.common import context, load_server_to_act
from cloudd.api.compute.errors import BadRequest, Forbidden, NotFound, read_json
from cloudd.api.compute.microversion import request_version
from cloudd.api.compute.network_proxies_common import _legacy, _network, _owner
from cloudd.network import floating
from cloudd.network.api import FloatingIpNotAssociated, NoFixedIp
from cloudd.network.floating import FloatingIp
from cloudd.network.store.networks import Network
from cloudd.vocab.network_errors import NetworkError


# ----- floating IPs ---------------------------------------------------------------------------
def floating_view(fip: FloatingIp) -> dict[str, Any]:
    associated = fip.associated
    return {"id": fip.uuid, "ip": fip.address, "pool": fip.pool,
            "fixed_ip": fip.fixed_address if associated else None,
            "instance_id": fip.instance_uuid if associated else None}


async def list_pools(request: web.Request) -> web.Response:
    _legacy(request)
    pools = await _network(request).floating_pools()
    return web.json_response({"floating_ip_pools": [{"name": p} for p in pools]})


async def list_floating_ips(request: web.Request) -> web.Response:
    project_id = _legacy(request)
    fips = await _network(request).floating_ips(project_id or _owner(request))
    return web.json_response({"floating_ips": [floating_view(f) for f in fips]})


async def _floating(request: web.Request, project_id: str | None) -> FloatingIp:
    key = request.match_info["id"]
    try:
        return await _network(request).floating_ip(key, project_id)
    except floating.FloatingIpNotFound:
        raise NotFound(f"Floating IP {key} could not be found.") from None


async def show_floating_ip(request: web.Request) -> web.Response:
    row = await _floating(request, _legacy(request))
    return web.json_response({"floating_ip": floating_view(row)})


async def create_floating_ip(request: web.Request) -> web.Response:
    _legacy(request)
    body = await read_json(request) if request.can_read_body else None
    pool = body.get("pool") if isinstance(body, dict) else None
    try:
        fip = await _network(request).allocate_floating_ip(_owner(request), pool)
    except floating.FloatingIpQuotaExceeded as exc:
        raise Forbidden(str(exc)) from None
    except floating.NoMoreFloatingIps as exc:
        raise NotFound(f"No more floating IPs: {exc}") from None
    return web.json_response({"floating_ip": floating_view(fip)})


async def delete_floating_ip(request: web.Request) -> web.Response:
    project_id = _legacy(request)
    await _network(request).delete_floating_ip(await _floating(request, project_id), project_id)
    return web.Response(status=202)


async def add_floating_ip(request: web.Request, args: Any) -> web.StreamResponse:
    if request_version(request).at_least("2.44"):
        raise BadRequest("There is no such action: addFloatingIp")
    row = await load_server_to_act(request)
    if not isinstance(args, dict) or not isinstance(args.get("address"), str):
        raise BadRequest("addFloatingIp needs an 'address'.")
    project_id = None if context(request).is_admin else row.project_id
    fixed = args.get("fixed_address")
    try:
        await _network(request).add_floating_ip(row.uuid, args["address"],
                                                str(fixed) if fixed else None, project_id)
    except NoFixedIp as exc:
        raise BadRequest(str(exc)) from None
    except floating.FloatingIpNotFound as exc:
        raise NotFound(str(exc)) from None
    except NetworkError as exc:
        raise BadRequest(str(exc)) from None
    return web.Response(status=202)


async def remove_floating_ip(request: web.Request, args: Any) -> web.StreamResponse:
    if request_version(request).at_least("2.44"):
        raise BadRequest("There is no such action: removeFloatingIp")
    row = await load_server_to_act(request)
    if not isinstance(args, dict) or not isinstance(args.get("address"), str):
        raise BadRequest("removeFloatingIp needs an 'address'.")
    project_id = None if context(request).is_admin else row.project_id
    try:
        await _network(request).remove_floating_ip(row.uuid, args["address"], project_id)
    except floating.FloatingIpNotFound as exc:
        raise NotFound(str(exc)) from None
    except FloatingIpNotAssociated as exc:
        raise BadRequest(str(exc)) from None
    return web.Response(status=202)


# ----- networks -------------------------------------------------------------------------------
def network_view(net: Network) -> dict[str, Any]:
    return {"id": net.uuid, "label": net.label, "cidr": net.cidr, "netmask": net.netmask,
            "gateway": net.gateway, "broadcast": net.broadcast, "dns1": net.dns1,
            "dns2": net.dns2, "bridge": net.bridge, "bridge_interface": net.bridge_interface,
            "vlan": net.vlan, "dhcp_start": net.dhcp_start, "project_id": net.project_id,
            "host": net.host, "multi_host": net.multi_host,
            "cidr_v6": None, "gateway_v6": None, "netmask_v6": None}


async def list_networks(request: web.Request) -> web.Response:
    nets = await _network(request).networks(_legacy(request))
    return web.json_response({"networks": [network_view(n) for n in nets]})


async def show_network(request: web.Request) -> web.Response:
    project_id = _legacy(request)
    key = request.match_info["id"]
    for net in await _network(request).networks(project_id):
        if net.uuid == key:
            return web.json_response({"network": network_view(net)})
    raise NotFound(f"Network {key} could not be found.")


def add_routes(app: web.Application, prefix: str) -> None:
    app.router.add_get(f"{prefix}/os-floating-ip-pools", list_pools)
    app.router.add_get(f"{prefix}/os-floating-ips", list_floating_ips)
    app.router.add_post(f"{prefix}/os-floating-ips", create_floating_ip)
    app.router.add_get(f"{prefix}/os-floating-ips/{{id}}", show_floating_ip)
    app.router.add_delete(f"{prefix}/os-floating-ips/{{id}}", delete_floating_ip)
    app.router.add_get(f"{prefix}/os-networks", list_networks)
    app.router.add_get(f"{prefix}/os-networks/{{id}}", show_network)
    server_actions.ACTIONS.update(addFloatingIp=add_floating_ip,
                                  removeFloatingIp=remove_floating_ip)
    network_proxies_groups.add_routes(app, prefix)

