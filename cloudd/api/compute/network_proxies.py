"""Nova's proxies to the network model, as Nova served them below microversion 2.36
(os-floating-ips, os-floating-ip-pools, os-networks, os-security-groups, os-security-group-rules;
404 from 2.36), the addFloatingIp/removeFloatingIp actions (below 2.44) and the security group
actions and listing of a server (every version). The same NetworkService calls as the Network
API and EC2."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from cloudd.api.compute import server_actions
from cloudd.api.compute.common import context, database, load_server_to_act
from cloudd.api.compute.errors import BadRequest, Forbidden, NotFound, read_json
from cloudd.api.compute.microversion import request_version
from cloudd.api.service import HOST_KEY
from cloudd.network import floating, ipam
from cloudd.network.ipam import NetworkError
from cloudd.network.service import NetworkService


def _service(request: web.Request) -> NetworkService:
    return request.config_dict[HOST_KEY].get(NetworkService)


def _legacy(request: web.Request) -> str | None:
    """404 from 2.36 (as Nova); else the project the caller reads or acts in (None: admin)."""
    if request_version(request).at_least("2.36"):
        raise NotFound("The resource could not be found.")
    ctx = context(request)
    if ctx.is_admin:
        return None
    if request.method == "GET":
        ctx.require_read(ctx.project_id)
    else:
        ctx.require_act(ctx.project_id)
    return ctx.project_id


def _owner(request: web.Request) -> str:
    return str(context(request).project_id)


async def _body(request: web.Request, key: str) -> dict[str, Any]:
    body = await read_json(request)
    if not isinstance(body, dict) or not isinstance(body.get(key), dict):
        raise BadRequest(f"The request body needs a '{key}' object.")
    data: dict[str, Any] = body[key]
    return data


# ----- floating IPs ---------------------------------------------------------------------------
def floating_view(row: dict[str, Any]) -> dict[str, Any]:
    associated = row["fixed_ip_id"] is not None
    return {"id": row["uuid"], "ip": row["address"], "pool": row["pool"],
            "fixed_ip": row["fixed_address"] if associated else None,
            "instance_id": row["instance_uuid"] if associated else None}


async def list_pools(request: web.Request) -> web.Response:
    _legacy(request)
    pools = await floating.list_pools(database(request))
    return web.json_response({"floating_ip_pools": [{"name": p} for p in pools]})


async def list_floating_ips(request: web.Request) -> web.Response:
    project_id = _legacy(request)
    rows = await floating.list_floating_ips(database(request), project_id or _owner(request))
    return web.json_response({"floating_ips": [floating_view(r) for r in rows]})


async def _floating(request: web.Request, project_id: str | None) -> dict[str, Any]:
    key = request.match_info["id"]
    try:
        return await floating.get_floating_ip(database(request), key, project_id)
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
        row = await _service(request).allocate_floating_ip(_owner(request), pool)
    except floating.FloatingIpQuotaExceeded as exc:
        raise Forbidden(str(exc)) from None
    except floating.NoMoreFloatingIps as exc:
        raise NotFound(f"No more floating IPs in pool {pool or floating.DEFAULT_POOL}: {exc}") \
            from None
    return web.json_response({"floating_ip": floating_view(row)})


async def delete_floating_ip(request: web.Request) -> web.Response:
    project_id = _legacy(request)
    row = await _floating(request, project_id)
    service = _service(request)
    if row["fixed_ip_id"] is not None:
        await service.disassociate_floating_ip(row["uuid"], project_id)
    await service.release_floating_ip(row["uuid"], project_id)
    return web.Response(status=202)


async def add_floating_ip(request: web.Request, args: Any) -> web.StreamResponse:
    if request_version(request).at_least("2.44"):
        raise BadRequest("There is no such action: addFloatingIp")
    row = await load_server_to_act(request)
    if not isinstance(args, dict) or not isinstance(args.get("address"), str):
        raise BadRequest("addFloatingIp needs an 'address'.")
    fixed = args.get("fixed_address") or await database(request).fetchval(
        "SELECT address FROM fixed_ips WHERE instance_uuid = $1 AND allocated = 1 ORDER BY id",
        row["uuid"])
    if not fixed:
        raise BadRequest(f"Instance {row['uuid']} has no fixed IP to associate with.")
    project_id = None if context(request).is_admin else row["project_id"]
    try:
        await _service(request).associate_floating_ip(args["address"], str(fixed), project_id)
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
    project_id = None if context(request).is_admin else row["project_id"]
    try:
        fip = await floating.get_floating_ip(database(request), args["address"], project_id)
    except floating.FloatingIpNotFound as exc:
        raise NotFound(str(exc)) from None
    if fip["instance_uuid"] != row["uuid"] or fip["fixed_ip_id"] is None:
        raise BadRequest(f"Floating IP {args['address']} is not associated with the instance.")
    await _service(request).disassociate_floating_ip(fip["uuid"], project_id)
    return web.Response(status=202)


# ----- networks -------------------------------------------------------------------------------
def network_view(row: dict[str, Any]) -> dict[str, Any]:
    keys = ("label", "cidr", "netmask", "gateway", "broadcast", "dns1", "dns2", "bridge",
            "bridge_interface", "vlan", "dhcp_start", "project_id", "host")
    return {"id": row["uuid"], **{k: row[k] for k in keys}, "multi_host": bool(row["multi_host"]),
            "cidr_v6": None, "gateway_v6": None, "netmask_v6": None}


async def list_networks(request: web.Request) -> web.Response:
    rows = await ipam.list_networks(database(request), _legacy(request))
    return web.json_response({"networks": [network_view(r) for r in rows]})


async def show_network(request: web.Request) -> web.Response:
    project_id = _legacy(request)
    key = request.match_info["id"]
    for row in await ipam.list_networks(database(request), project_id):
        if row["uuid"] == key:
            return web.json_response({"network": network_view(row)})
    raise NotFound(f"Network {key} could not be found.")


def add_routes(app: web.Application, prefix: str) -> None:
    from cloudd.api.compute import network_proxies_groups

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

