"""/servers: create, list (brief and detail), show, update, delete."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

from aiohttp import web

from cloudd.api.compute import flavor_access, server_groups, views
from cloudd.api.compute.common import (
    compute_api,
    context,
    database,
    is_uuid,
    load_server,
    load_server_to_act,
    parse_limit,
    parse_time,
    request_id,
)
from cloudd.api.compute.errors import BadRequest, Forbidden, parse_body
from cloudd.api.compute.microversion import request_version
from cloudd.api.compute.quotas import DEFAULT_QUOTAS
from cloudd.api.compute.server_models import ServerCreate, ServerCreateBody, ServerUpdateBody
from cloudd.api.image.for_compute import BootImageError, check_boot_image
from cloudd.api.network import addresses as net_addresses
from cloudd.api.network.for_compute import NetworkRequestRefused, requested_networks
from cloudd.api.patterns import PatternError, name_filter
from cloudd.api.service import HOST_KEY
from cloudd.compute import instances, quota, states
from cloudd.compute.api import BuildRequest, GroupNotFound
from cloudd.db import Executor
from cloudd.network.secgroups import SecurityGroupNotFound


async def find_flavor(db: Executor, flavor_ref: str | int) -> dict[str, Any]:
    """A flavor by id or by a link ending in the id (400 when unknown, as Nova)."""
    flavorid = str(flavor_ref).rstrip("/").rsplit("/", 1)[-1]
    row = await db.fetchrow("SELECT * FROM flavors WHERE flavorid = $1 AND deleted = 0", flavorid)
    if row is None:
        raise BadRequest(f"Flavor {flavor_ref} could not be found.")
    return row


def image_ref_of(server: ServerCreate) -> str:
    """imageRef (an id or a link), else the boot-from-image block device's uuid."""
    ref = server.imageRef.rstrip("/").rsplit("/", 1)[-1] if server.imageRef else ""
    if not ref:
        for bdm in server.block_device_mapping_v2:
            if bdm.source_type == "image" and bdm.uuid and str(bdm.boot_index) in ("0", "None"):
                ref = bdm.uuid
    if not ref:
        raise BadRequest("Missing imageRef attribute")
    if not is_uuid(ref):
        raise BadRequest(f"Invalid imageRef provided: {ref} is not a UUID.")
    return ref.lower()


def check_metadata_quota(metadata: dict[str, str]) -> None:
    if len(metadata) > DEFAULT_QUOTAS["metadata_items"]:
        raise Forbidden("Quota exceeded for metadata_items: maximum number of metadata items "
                        f"is {DEFAULT_QUOTAS['metadata_items']}.")


async def create(request: web.Request) -> web.Response:
    ctx = context(request)
    ctx.require_act(ctx.project_id)
    version = request_version(request)
    body = await parse_body(request, ServerCreateBody)
    server = body.server
    if server.description is not None and not version.at_least("2.19"):
        raise BadRequest("Invalid input: 'description' was unexpected at this microversion")
    if version.at_least("2.57") and server.personality:
        raise BadRequest("Invalid input: 'personality' was removed in 2.57")
    max_count = server.max_count or server.min_count
    if max_count < server.min_count:
        raise BadRequest("min_count must be <= max_count")
    db = database(request)
    flavor = await find_flavor(db, server.flavorRef)
    if not await flavor_access.may_use(db, flavor, ctx):
        raise BadRequest(f"Flavor {server.flavorRef} could not be found.")
    if flavor["disabled"]:
        raise BadRequest(f"Flavor {flavor['flavorid']} is disabled.")
    image_ref = image_ref_of(server)
    try:
        image = await check_boot_image(db, image_ref, ctx.project_id, ctx.is_admin, flavor)
    except BootImageError as exc:
        raise BadRequest(str(exc)) from None
    key_data = None
    if server.key_name is not None:
        key = await db.fetchrow("SELECT public_key FROM key_pairs WHERE user_id = $1 AND name = $2",
                                ctx.user_id, server.key_name)
        if key is None:
            raise BadRequest(f"Invalid key_name provided: {server.key_name}")
        key_data = key["public_key"]
    check_metadata_quota(server.metadata)
    try:
        networks = await requested_networks(db, str(ctx.project_id), server.networks)
    except NetworkRequestRefused as exc:
        raise BadRequest(str(exc)) from None
    hints = dict(body.scheduler_hints or body.scheduler_hints_legacy)
    if "group" in hints:
        hints["group"] = await server_groups.find_for_hint(db, hints["group"], str(ctx.project_id))
    rows = await _build(request, BuildRequest(
        name=server.name, flavor=flavor, project_id=str(ctx.project_id), user_id=ctx.user_id,
        image_ref=image_ref, image_properties=image["properties"],
        min_count=server.min_count, max_count=max_count,
        key_name=server.key_name, key_data=key_data, user_data=server.user_data,
        metadata=server.metadata, availability_zone=server.availability_zone,
        scheduler_hints=hints, description=server.description, networks=networks,
        security_groups=[group.name for group in server.security_groups],
    ))
    if server.accessIPv4 or server.accessIPv6:
        for row in rows:
            await instances.update(db, row["uuid"], {"access_ip_v4": server.accessIPv4,
                                                     "access_ip_v6": server.accessIPv6})
    if server.return_reservation_id:
        return web.json_response({"reservation_id": rows[0]["reservation_id"]}, status=202)
    first = rows[0]
    server_links = views.links(request, "servers", first["uuid"])
    view = {"id": first["uuid"], "links": server_links, "OS-DCF:diskConfig": "MANUAL",
            "security_groups": [{"name": g.name} for g in server.security_groups]
            or [{"name": "default"}],
            "adminPass": server.adminPass or secrets.token_urlsafe(9)}
    return web.json_response({"server": view}, status=202,
                             headers={"Location": server_links[0]["href"]})


async def _build(request: web.Request, build: BuildRequest) -> list[dict[str, Any]]:
    """ComputeAPI.create, its quota and group refusals as Nova's 403 and 400."""
    try:
        return await compute_api(request).create(build, request_id(request))
    except quota.QuotaExceeded as exc:
        raise Forbidden(exc.message) from None
    except GroupNotFound as exc:
        raise BadRequest(str(exc)) from None
    except SecurityGroupNotFound as exc:
        raise BadRequest(f"{exc} for project {build.project_id}") from None


def _name_filter(query: Any) -> Callable[[str], bool] | None:
    """Nova's `name` filter is a regular expression: on RE2, in time linear in the name."""
    if "name" not in query:
        return None
    try:
        return name_filter(query["name"])
    except PatternError as exc:
        raise BadRequest(f"Invalid name filter: {exc}") from None


def _matches(row: dict[str, Any], query: Any, is_admin: bool,
             name_matches: Callable[[str], bool] | None) -> bool:
    if name_matches is not None and not name_matches(row["name"] or ""):
        return False
    if "status" in query and states.api_status(row["vm_state"], row["task_state"]) != \
            query["status"].upper():
        return False
    if "flavor" in query and str(row["flavor"].get("flavorid")) != query["flavor"]:
        return False
    if "image" in query and row["image_ref"] != query["image"].rsplit("/", 1)[-1]:
        return False
    if is_admin and "host" in query and row["host"] != query["host"]:
        return False
    return True


async def _visible_servers(request: web.Request) -> list[dict[str, Any]]:
    ctx = context(request)
    query = request.query
    if not ctx.is_admin:
        ctx.require_read(ctx.project_id)
    limit = parse_limit(query)
    since = parse_time(query["changes-since"], "changes-since") if "changes-since" in query else None
    sql, args = "SELECT * FROM instances WHERE deleted = 0", list[Any]()
    all_tenants = ctx.is_admin and "all_tenants" in query and query["all_tenants"].lower() not in (
        "0", "false", "off", "no")
    if not all_tenants:
        sql, args = sql + " AND project_id = $1", [ctx.project_id]
    elif "tenant_id" in query or "project_id" in query:
        sql, args = sql + " AND project_id = $1", [query.get("tenant_id") or query["project_id"]]
    if since is not None:
        sql, args = sql + f" AND updated_at >= ${len(args) + 1}", [*args, since]
    python_filters = {"name", "status", "flavor", "image", "host"} & set(query)
    if not python_filters:
        # Paging in SQL: a page of a large list must not read the whole table.
        if "marker" in query:
            mark = await database(request).fetchrow(
                "SELECT created_at, id FROM instances WHERE uuid = $1", query["marker"])
            if mark is None:
                raise BadRequest(f"marker [{query['marker']}] not found")
            n = len(args)
            sql += f" AND (created_at < ${n + 1} OR (created_at = ${n + 1} AND id < ${n + 2}))"
            args += [mark["created_at"], mark["id"]]
        sql += " ORDER BY created_at DESC, id DESC"
        if "limit" in query:
            sql += f" LIMIT {int(limit)}"
        return [instances.decode(r) for r in await database(request).fetch(sql, *args)]
    name_matches = _name_filter(query)  # a bad pattern is a 400 before any row is read
    rows = await database(request).fetch(sql + " ORDER BY created_at DESC, id DESC", *args)
    servers = [s for s in (instances.decode(r) for r in rows)
               if _matches(s, query, ctx.is_admin, name_matches)]
    if "marker" in query:
        ids = [s["uuid"] for s in servers]
        if query["marker"] not in ids:
            raise BadRequest(f"marker [{query['marker']}] not found")
        servers = servers[ids.index(query["marker"]) + 1:]
    return servers[:limit] if "limit" in query else servers


def _collection_links(request: web.Request, servers: list[dict[str, Any]], path: str) \
        -> list[dict[str, str]]:
    """Nova's next link: when the page is exactly `limit` long."""
    if "limit" not in request.query or not servers or len(servers) != parse_limit(request.query):
        return []
    params = {k: v for k, v in request.query.items() if k != "marker"}
    params["marker"] = servers[-1]["uuid"]
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return [{"rel": "next", "href": f"{views.base_url(request)}/v2.1/{path}?{query}"}]


async def index(request: web.Request) -> web.Response:
    servers = await _visible_servers(request)
    body: dict[str, Any] = {"servers": [views.server_brief(request, s) for s in servers]}
    if next_links := _collection_links(request, servers, "servers"):
        body["servers_links"] = next_links
    return web.json_response(body)


def _status_of(service: dict[str, Any] | None, down_time: float) -> str:
    """Nova's host_status: UP, DOWN, MAINTENANCE (disabled), UNKNOWN (no such service)."""
    if service is None:
        return "UNKNOWN"
    seen = service["last_seen_up"] or service["updated_at"] or service["created_at"]
    if service["forced_down"] or seen is None or views.time.time() - seen > down_time:
        return "DOWN"
    return "MAINTENANCE" if service["disabled"] else "UP"


async def host_statuses(request: web.Request) -> dict[str, str]:
    """Every host's status in one query (a list of servers must not ask once per server)."""
    rows = await database(request).fetch(
        'SELECT host, disabled, forced_down, last_seen_up, updated_at, created_at FROM services')
    down_time = request.config_dict[HOST_KEY].config.service.service_down_time
    return {row["host"]: _status_of(row, down_time) for row in rows}


async def latest_faults(request: web.Request, uuids: list[str]) -> dict[str, Any]:
    """The newest fault of each of `uuids`, in one query."""
    if not uuids:
        return {}
    marks = ", ".join(f"${n}" for n in range(1, len(uuids) + 1))
    rows = await database(request).fetch(
        f"SELECT * FROM instance_faults WHERE instance_uuid IN ({marks}) ORDER BY id", *uuids)
    return {row["instance_uuid"]: row for row in rows}  # later ids overwrite earlier ones


async def detailed_view(request: web.Request, row: dict[str, Any]) -> dict[str, Any]:
    return (await detailed_views(request, [row]))[0]


async def detailed_views(request: web.Request, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    ctx = context(request)
    version = request_version(request)
    faulty = [r["uuid"] for r in rows if r["vm_state"] in (states.ERROR, states.DELETED)]
    faults = await latest_faults(request, faulty)
    statuses: dict[str, str] | None = None
    if ctx.is_admin and version.at_least("2.16"):
        statuses = await host_statuses(request)

    def status_of(host: str | None) -> str | None:
        if statuses is None:
            return None
        return statuses.get(host, "UNKNOWN") if host else ""

    uuids = [r["uuid"] for r in rows]  # addresses and groups of the whole page in one query each
    addresses = await net_addresses.server_addresses(database(request), uuids)
    groups = await net_addresses.server_security_groups(database(request), uuids)
    return [views.server_detail(request, r, version, ctx, faults.get(r["uuid"]),
                                status_of(r["host"]), addresses[r["uuid"]], groups[r["uuid"]])
            for r in rows]


async def detail(request: web.Request) -> web.Response:
    servers = await _visible_servers(request)
    body: dict[str, Any] = {"servers": await detailed_views(request, servers)}
    if next_links := _collection_links(request, servers, "servers/detail"):
        body["servers_links"] = next_links
    return web.json_response(body)


async def show(request: web.Request) -> web.Response:
    row = await load_server(request)
    return web.json_response({"server": await detailed_view(request, row)})


async def update(request: web.Request) -> web.Response:
    row = await load_server_to_act(request, lock_checked=False)
    version = request_version(request)
    body = await parse_body(request, ServerUpdateBody)
    changes = body.server.model_dump(exclude_unset=True, by_alias=False)
    if "description" in changes and not version.at_least("2.19"):
        raise BadRequest("Invalid input: 'description' was unexpected at this microversion")
    changes.pop("disk_config", None)
    columns = {"name": "name", "accessIPv4": "access_ip_v4", "accessIPv6": "access_ip_v6",
               "description": "description"}
    values = {columns[k]: v for k, v in changes.items()}
    if values:
        row = await instances.update(database(request), row["uuid"], values)
    if version.at_least("2.75"):
        return web.json_response({"server": await detailed_view(request, row)})
    basic = await net_addresses.server_addresses(database(request), [row["uuid"]], detailed=False)
    return web.json_response({"server": views.server_basic(request, row, version,
                                                           basic[row["uuid"]])})


async def delete(request: web.Request) -> web.Response:
    row = await load_server_to_act(request)
    await compute_api(request).delete(row, request_id(request), context(request))
    return web.Response(status=204)


def add_routes(app: web.Application, prefix: str) -> None:
    app.router.add_post(f"{prefix}/servers", create)
    app.router.add_get(f"{prefix}/servers", index)
    app.router.add_get(f"{prefix}/servers/detail", detail)
    app.router.add_get(f"{prefix}/servers/{{server_id}}", show)
    app.router.add_put(f"{prefix}/servers/{{server_id}}", update)
    app.router.add_delete(f"{prefix}/servers/{{server_id}}", delete)
