"""/v2.0/floatingips: nova-network's floating IPs; the pool is the external network, the port
is the server's virtual interface. Every operation is NetworkAPI's (as EC2's and Nova's are);
here the body is read, the pool found by its network id and the records rendered."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from cloudd.api.network.common import (
    actor_project,
    context,
    isotime,
    item_response,
    list_response,
    network_api,
    pool_network_id,
    reader_project,
)
from cloudd.api.network.errors import BadRequest, Conflict, NotFound, read_resource
from cloudd.network import floating
from cloudd.network.api import NetworkAPI, PortNotFound
from cloudd.network.floating import FloatingIp
from cloudd.vocab.network_errors import NetworkError


def floating_view(fip: FloatingIp) -> dict[str, Any]:
    project = fip.project_id or ""
    associated = fip.associated
    return {"id": fip.uuid, "floating_ip_address": fip.address,
            "floating_network_id": pool_network_id(fip.pool),
            "port_id": fip.vif_id if associated else None,
            "fixed_ip_address": fip.fixed_address if associated else None,
            "router_id": None, "status": "ACTIVE" if associated else "DOWN",
            "project_id": project, "tenant_id": project, "description": "", "tags": [],
            "port_details": None, "port_forwardings": [], "qos_policy_id": None,
            "dns_domain": "", "dns_name": "", "revision_number": 1,
            # nova-network keeps no creation time its floating IP reads carry: the epoch
            "created_at": isotime(None), "updated_at": isotime(None)}


async def _load(request: web.Request, project_id: str | None) -> FloatingIp:
    key = request.match_info["id"]
    try:
        fip = await network_api(request).floating_ip(key, project_id)
    except floating.FloatingIpNotFound:
        fip = None
    if fip is None or fip.uuid != key:  # an address is not an id: clients then list
        raise NotFound(f"Floating IP {key} could not be found.", "FloatingIPNotFound")
    return fip


async def _pool_of(api: NetworkAPI, network_id: str) -> str:
    for pool in await api.floating_pools():
        if pool_network_id(pool) == network_id:
            return pool
    if await api.network_exists(network_id):
        raise BadRequest(f"Network {network_id} is not a valid external network.",
                         "BadRequest")
    raise NotFound(f"Network {network_id} could not be found.", "NetworkNotFound")


def _association_error(exc: Exception) -> Exception:
    if isinstance(exc, PortNotFound):
        return NotFound(str(exc), "PortNotFound")
    return BadRequest(str(exc))


async def list_floatingips(request: web.Request) -> web.Response:
    fips = await network_api(request).floating_ips(reader_project(request))
    return list_response(request, "floatingips", [floating_view(f) for f in fips])


async def show_floatingip(request: web.Request) -> web.Response:
    return item_response(request, "floatingip",
                         floating_view(await _load(request, reader_project(request))))


async def create_floatingip(request: web.Request) -> web.Response:
    body = await read_resource(request, "floatingip")
    actor = actor_project(request)
    ctx = context(request)
    owner = str(body.get("project_id") or body.get("tenant_id") or ctx.project_id)
    if actor is not None and owner != actor:
        raise NotFound(f"Project {owner} could not be found.")  # another project: not there
    if not isinstance(body.get("floating_network_id"), str):
        raise BadRequest("floating_network_id is required.")
    api = network_api(request)
    pool = await _pool_of(api, body["floating_network_id"])
    port_id = str(body["port_id"]) if body.get("port_id") else None
    try:
        fip = await api.allocate_floating_ip(owner, pool, body.get("floating_ip_address"),
                                             port_id)
    except floating.FloatingIpQuotaExceeded as exc:
        raise Conflict(f"Quota exceeded for resources: ['floatingip']. {exc}", "OverQuota") from None
    except floating.NoMoreFloatingIps as exc:
        raise Conflict(str(exc), "IpAddressGenerationFailure") from None
    except (PortNotFound, NetworkError) as exc:
        raise _association_error(exc) from None
    return item_response(request, "floatingip", floating_view(fip), status=201)


async def update_floatingip(request: web.Request) -> web.Response:
    body = await read_resource(request, "floatingip")
    project_id = actor_project(request)
    fip = await _load(request, project_id)
    if "port_id" not in body:
        return item_response(request, "floatingip", floating_view(fip))
    api = network_api(request)
    if body["port_id"] is None:
        fip = await api.disassociate_floating_ip(fip.uuid, project_id)
    else:
        try:
            fip = await api.associate_to_port(fip.uuid, str(body["port_id"]), project_id)
        except (PortNotFound, NetworkError) as exc:
            raise _association_error(exc) from None
    return item_response(request, "floatingip", floating_view(fip))


async def delete_floatingip(request: web.Request) -> web.Response:
    """Neutron deletes an associated floating IP too: it is disassociated first."""
    project_id = actor_project(request)
    await network_api(request).delete_floating_ip(await _load(request, project_id), project_id)
    return web.Response(status=204)


def add_routes(app: web.Application, prefix: str) -> None:
    app.router.add_get(f"{prefix}/floatingips", list_floatingips)
    app.router.add_post(f"{prefix}/floatingips", create_floatingip)
    app.router.add_get(f"{prefix}/floatingips/{{id}}", show_floatingip)
    app.router.add_put(f"{prefix}/floatingips/{{id}}", update_floatingip)
    app.router.add_delete(f"{prefix}/floatingips/{{id}}", delete_floatingip)
