"""/v2.0/floatingips: nova-network's floating IPs; the pool is the external network, the port
is the server's virtual interface. Every change goes through NetworkService (as EC2's does)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from cloudd.api.network.common import (
    actor_project,
    context,
    database,
    isotime,
    item_response,
    list_response,
    network_service,
    pool_network_id,
    reader_project,
)
from cloudd.api.network.errors import BadRequest, Conflict, NotFound, read_resource
from cloudd.db import Executor
from cloudd.network import floating
from cloudd.network.ipam import NetworkError


def floating_view(row: dict[str, Any]) -> dict[str, Any]:
    project = row["project_id"] or ""
    associated = row["fixed_ip_id"] is not None
    return {"id": row["uuid"], "floating_ip_address": row["address"],
            "floating_network_id": pool_network_id(row["pool"]),
            "port_id": row["vif_id"] if associated else None,
            "fixed_ip_address": row["fixed_address"] if associated else None,
            "router_id": None, "status": "ACTIVE" if associated else "DOWN",
            "project_id": project, "tenant_id": project, "description": "", "tags": [],
            "port_details": None, "port_forwardings": [], "qos_policy_id": None,
            "dns_domain": "", "dns_name": "", "revision_number": 1,
            "created_at": isotime(row.get("created_at")), "updated_at": isotime(None)}


async def _load(request: web.Request, project_id: str | None) -> dict[str, Any]:
    key = request.match_info["id"]
    try:
        row = await floating.get_floating_ip(database(request), key, project_id)
    except floating.FloatingIpNotFound:
        row = None
    if row is None or row["uuid"] != key:  # an address is not an id: clients then list
        raise NotFound(f"Floating IP {key} could not be found.", "FloatingIPNotFound")
    return row


async def _pool_of(db: Executor, network_id: str) -> str:
    for pool in await floating.list_pools(db):
        if pool_network_id(pool) == network_id:
            return pool
    if await db.fetchval("SELECT count(*) FROM networks WHERE uuid = $1 AND deleted = 0",
                         network_id):
        raise BadRequest(f"Network {network_id} is not a valid external network.",
                         "BadRequest")
    raise NotFound(f"Network {network_id} could not be found.", "NetworkNotFound")


async def _fixed_address_of_port(db: Executor, port_id: str, project_id: str | None) -> str:
    row = await db.fetchrow(
        "SELECT f.address, i.project_id FROM virtual_interfaces v"
        " JOIN instances i ON i.uuid = v.instance_uuid"
        " JOIN fixed_ips f ON f.virtual_interface_id = v.id WHERE v.uuid = $1", port_id)
    if row is None or (project_id is not None and row["project_id"] != project_id):
        raise NotFound(f"Port {port_id} could not be found.", "PortNotFound")
    return str(row["address"])


async def _associate(request: web.Request, key: str, port_id: str,
                     project_id: str | None) -> dict[str, Any]:
    fixed = await _fixed_address_of_port(database(request), port_id, project_id)
    try:
        return await network_service(request).associate_floating_ip(key, fixed, project_id)
    except NetworkError as exc:
        raise BadRequest(str(exc)) from None


async def list_floatingips(request: web.Request) -> web.Response:
    rows = await floating.list_floating_ips(database(request), reader_project(request))
    return list_response(request, "floatingips", [floating_view(r) for r in rows])


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
    db = database(request)
    pool = await _pool_of(db, body["floating_network_id"])
    service = network_service(request)
    try:
        row = await floating.allocate_floating_ip(
            db, owner, pool, service.host.config.network.quota_floating_ips,
            body.get("floating_ip_address"))
    except floating.FloatingIpQuotaExceeded as exc:
        raise Conflict(f"Quota exceeded for resources: ['floatingip']. {exc}", "OverQuota") from None
    except floating.NoMoreFloatingIps as exc:
        raise Conflict(str(exc), "IpAddressGenerationFailure") from None
    if body.get("port_id"):
        try:
            row = await _associate(request, row["uuid"], str(body["port_id"]), owner)
        except BaseException:
            await service.release_floating_ip(row["uuid"], owner)
            raise
    return item_response(request, "floatingip", floating_view(row), status=201)


async def update_floatingip(request: web.Request) -> web.Response:
    body = await read_resource(request, "floatingip")
    project_id = actor_project(request)
    row = await _load(request, project_id)
    if "port_id" not in body:
        return item_response(request, "floatingip", floating_view(row))
    service = network_service(request)
    if body["port_id"] is None:
        row = await service.disassociate_floating_ip(row["uuid"], project_id)
    else:
        row = await _associate(request, row["uuid"], str(body["port_id"]), project_id)
    return item_response(request, "floatingip", floating_view(row))


async def delete_floatingip(request: web.Request) -> web.Response:
    """Neutron deletes an associated floating IP too: it is disassociated first."""
    project_id = actor_project(request)
    row = await _load(request, project_id)
    service = network_service(request)
    if row["fixed_ip_id"] is not None:
        await service.disassociate_floating_ip(row["uuid"], project_id)
    await service.release_floating_ip(row["uuid"], project_id)
    return web.Response(status=204)


def add_routes(app: web.Application, prefix: str) -> None:
    app.router.add_get(f"{prefix}/floatingips", list_floatingips)
    app.router.add_post(f"{prefix}/floatingips", create_floatingip)
    app.router.add_get(f"{prefix}/floatingips/{{id}}", show_floatingip)
    app.router.add_put(f"{prefix}/floatingips/{{id}}", update_floatingip)
    app.router.add_delete(f"{prefix}/floatingips/{{id}}", delete_floatingip)
