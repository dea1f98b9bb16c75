"""/servers: create, list (brief and detail), show, update, delete."""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from cloudd.api.compute import server_tags, views
from cloudd.api.compute.common import (
    compute_api,
    context,
    database,
    load_server,
    load_server_to_act,
    request_id,
)
from cloudd.api.compute.errors import BadRequest, parse_body
from cloudd.api.compute.microversion import request_version
from cloudd.api.compute.server_list import collection_links, visible_servers
from cloudd.api.compute.server_models import (
    ServerCreate,
    ServerCreateBody,
    ServerUpdateBody,
    answers_password,
    generate_password,
)
from cloudd.api.keys import HOST_KEY
from cloudd.api.network import addresses as net_addresses
from cloudd.compute import hosts, instances
from cloudd.compute.instances import Instance
from cloudd.compute.instances import tags as tag_store
from cloudd.frontdoor.compute_create import ServerCreateRequest
from cloudd.network.for_compute import NetworkRef, RequestedNetworks
from cloudd.network.secgroups import SecurityGroupNotFound
from cloudd.vocab import states


def image_ref_of(server: ServerCreate) -> str:
    """imageRef (an id or a link), else the boot-from-image block device's uuid ("" if none:
    ComputeAPI refuses that after the flavor, in Nova's order)."""
    ref = server.imageRef.rstrip("/").rsplit("/", 1)[-1] if server.imageRef else ""
    if not ref:
        for bdm in server.block_device_mapping_v2:
            if bdm.source_type == "image" and bdm.uuid and str(bdm.boot_index) in ("0", "None"):
                ref = bdm.uuid
    return ref


NO_PERSONALITY = ("File injection (personality) is not supported by this cloud: pass the "
                  "files in user_data (cloud-init write_files) instead.")
_TRUE = {"true", "1", "on", "yes"}  # Nova's parameter_types.boolean
_FALSE = {"false", "0", "off", "no"}


def refuse_what_cloudd_cannot_do(server: ServerCreate) -> None:
    """Requests Nova would carry out but cloudd cannot yet answer 400 and say so, rather than
    boot a server without what was asked (a volume, a config drive, injected files, tags)."""
    for bdm in server.block_device_mapping_v2:
        if bdm.destination_type == "volume" or bdm.source_type in ("volume", "snapshot"):
            raise BadRequest("Block device mappings to volumes need a block storage service, "
                             "which this cloud does not have: boot from an image instead.")
        if bdm.source_type != "image" or str(bdm.boot_index) not in ("0", "None"):
            raise BadRequest("Only the boot image's block device mapping is supported: a "
                             "server's other disks come from its flavor (ephemeral, swap).")
    drive = server.config_drive
    text = str(drive).lower() if drive is not None else "false"
    if text not in _TRUE | _FALSE:
        raise BadRequest(f"Invalid input for field/attribute config_drive. Value: {drive!r}.")
    if text in _TRUE:
        raise BadRequest("Config drives are not supported by this cloud yet: the metadata "
                         "service (http://169.254.169.254) serves the same data.")
    if server.personality:
        raise BadRequest(NO_PERSONALITY)
    networks = server.networks if isinstance(server.networks, list) else []
    if any(n.tag is not None for n in networks) or any(
            b.model_extra and "tag" in b.model_extra for b in server.block_device_mapping_v2):
        raise BadRequest("Device tags are not supported by this cloud.")


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
    refuse_what_cloudd_cannot_do(server)
    if "tags" in server.model_fields_set and (server.tags is None
                                              or not version.at_least("2.52")):
        raise BadRequest("Invalid input: 'tags' must be a list, from microversion 2.52")
    max_count = server.max_count or server.min_count
    if max_count < server.min_count:
        raise BadRequest("min_count must be <= max_count")
    networks: RequestedNetworks = server.networks if isinstance(server.networks, str | None) \
        else [NetworkRef(uuid=n.uuid, port=n.port, fixed_ip=n.fixed_ip) for n in server.networks]
    req = ServerCreateRequest(
        name=server.name, project_id=str(ctx.project_id), user_id=ctx.user_id,
        is_admin=ctx.is_admin, flavor_ref=server.flavorRef, image_ref=image_ref_of(server),
        key_name=server.key_name, networks=networks,
        security_groups=[group.name for group in server.security_groups],
        access_ip_v4=server.accessIPv4, access_ip_v6=server.accessIPv6,
        metadata=server.metadata, user_data=server.user_data, description=server.description,
        availability_zone=server.availability_zone,
        scheduler_hints=dict(body.scheduler_hints or body.scheduler_hints_legacy),
        min_count=server.min_count, max_count=max_count)
    try:  # a CreateRefused (400) or QuotaExceeded (403) leaves as it is
        rows = await compute_api(request).create(req, request_id(request))
    except SecurityGroupNotFound as exc:
        raise BadRequest(f"{exc} for project {req.project_id}") from None
    if server.tags:  # 2.52: each new server starts with the tags
        for row in rows:
            await tag_store.replace_tags(database(request), row.uuid, server.tags)
    if server.return_reservation_id:
        return web.json_response({"reservation_id": rows[0].reservation_id}, status=202)
    first = rows[0]
    server_links = views.links(request, "servers", first.uuid)
    view: dict[str, Any] = {"id": first.uuid, "links": server_links, "OS-DCF:diskConfig": "MANUAL",
                            "security_groups": [{"name": g.name}
                                                for g in server.security_groups]
                            or [{"name": "default"}]}
    if answers_password(request):
        view["adminPass"] = server.adminPass or generate_password()
    return web.json_response({"server": view}, status=202,
                             headers={"Location": server_links[0]["href"]})


async def index(request: web.Request) -> web.Response:
    servers = await visible_servers(request)
    body: dict[str, Any] = {"servers": [views.server_brief(request, s) for s in servers]}
    if next_links := collection_links(request, servers, "servers"):
        body["servers_links"] = next_links
    return web.json_response(body)


def _status_of(service: hosts.Service | None, down_time: float) -> str:
    """Nova's host_status: UP, DOWN, MAINTENANCE (disabled), UNKNOWN (no such service)."""
    if service is None:
        return "UNKNOWN"
    seen = service.last_seen_up or service.updated_at or service.created_at
    if service.forced_down or seen is None or time.time() - seen > down_time:
        return "DOWN"
    return "MAINTENANCE" if service.disabled else "UP"


async def host_statuses(request: web.Request) -> dict[str, str]:
    """Every host's status in one query (a list of servers must not ask once per server)."""
    rows = await hosts.services(database(request))
    down_time = request.config_dict[HOST_KEY].config.service.service_down_time
    return {row.host: _status_of(row, down_time) for row in rows}


async def latest_faults(request: web.Request,
                        uuids: list[str]) -> dict[str, instances.InstanceFault]:
    """The newest fault of each of `uuids`, in one query."""
    return await instances.latest_faults(database(request), uuids)


async def detailed_view(request: web.Request, row: Instance) -> dict[str, Any]:
    return (await detailed_views(request, [row]))[0]


async def detailed_views(request: web.Request, rows: list[Instance]) -> list[dict[str, Any]]:
    ctx = context(request)
    version = request_version(request)
    faulty = [r.uuid for r in rows if r.vm_state in (states.ERROR, states.DELETED)]
    faults = await latest_faults(request, faulty)
    statuses: dict[str, str] | None = None
    if ctx.is_admin and version.at_least("2.16"):
        statuses = await host_statuses(request)

    def status_of(host: str | None) -> str | None:
        if statuses is None:
            return None
        return statuses.get(host, "UNKNOWN") if host else ""

    uuids = [r.uuid for r in rows]  # addresses and groups of the whole page in one query each
    addresses = await net_addresses.server_addresses(database(request), uuids)
    groups = await net_addresses.server_security_groups(database(request), uuids)
    tags = await server_tags.tags_of(request, rows) or {}
    return [views.server_detail(request, r, version, ctx, faults.get(r.uuid),
                                status_of(r.host), addresses[r.uuid], groups[r.uuid],
                                tags.get(r.uuid))
            for r in rows]


async def detail(request: web.Request) -> web.Response:
    servers = await visible_servers(request)
    body: dict[str, Any] = {"servers": await detailed_views(request, servers)}
    if next_links := collection_links(request, servers, "servers/detail"):
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
        row = await instances.update(database(request), row.uuid, values)
    if version.at_least("2.75"):
        return web.json_response({"server": await detailed_view(request, row)})
    basic = await net_addresses.server_addresses(database(request), [row.uuid], detailed=False)
    tags = await server_tags.tags_of(request, [row]) or {}
    return web.json_response({"server": views.server_basic(request, row, version,
                                                           basic[row.uuid], tags.get(row.uuid))})


async def delete(request: web.Request) -> web.Response:
    row = await load_server_to_act(request)
    await compute_api(request).delete_or_soft_delete(row, request_id(request), context(request))
    return web.Response(status=204)


def add_routes(app: web.Application, prefix: str) -> None:
    app.router.add_post(f"{prefix}/servers", create)
    app.router.add_get(f"{prefix}/servers", index)
    app.router.add_get(f"{prefix}/servers/detail", detail)
    app.router.add_get(f"{prefix}/servers/{{server_id}}", show)
    app.router.add_put(f"{prefix}/servers/{{server_id}}", update)
    app.router.add_delete(f"{prefix}/servers/{{server_id}}", delete)
