"""Server sub-resources: metadata, ips, os-instance-actions."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from cloudd.api.compute.common import context, database, load_server, load_server_to_act
from cloudd.api.compute.errors import BadRequest, Forbidden, NotFound, parse_body
from cloudd.api.compute.microversion import request_version
from cloudd.api.compute.quotas import DEFAULT_QUOTAS
from cloudd.api.compute.server_models import MetadataBody, MetaItemBody
from cloudd.api.compute.views import usage_time
from cloudd.api.network.addresses import server_addresses
from cloudd.compute import instances
from cloudd.compute.instances import Instance


async def _save_metadata(request: web.Request, row: Instance, metadata: dict[str, str]) \
        -> dict[str, str]:
    if len(metadata) > DEFAULT_QUOTAS["metadata_items"]:
        raise Forbidden("Quota exceeded for metadata_items: maximum number of metadata items is "
                        f"{DEFAULT_QUOTAS['metadata_items']}.")
    await instances.update(database(request), row.uuid, {"metadata": metadata})
    return metadata


async def metadata_index(request: web.Request) -> web.Response:
    row = await load_server(request)
    return web.json_response({"metadata": row.metadata})


async def metadata_merge(request: web.Request) -> web.Response:
    row = await load_server_to_act(request)
    body = await parse_body(request, MetadataBody)
    merged = await _save_metadata(request, row, {**(row.metadata), **body.metadata})
    return web.json_response({"metadata": merged})


async def metadata_replace(request: web.Request) -> web.Response:
    row = await load_server_to_act(request)
    body = await parse_body(request, MetadataBody)
    return web.json_response({"metadata": await _save_metadata(request, row, body.metadata)})


async def metadata_show(request: web.Request) -> web.Response:
    row = await load_server(request)
    key = request.match_info["key"]
    if key not in (row.metadata):
        raise NotFound("Metadata item was not found")
    return web.json_response({"meta": {key: row.metadata[key]}})


async def metadata_put_item(request: web.Request) -> web.Response:
    row = await load_server_to_act(request)
    key = request.match_info["key"]
    body = await parse_body(request, MetaItemBody)
    if len(body.meta) != 1 or key not in body.meta:
        raise BadRequest("Request body and URI mismatch")
    await _save_metadata(request, row, {**(row.metadata), key: body.meta[key]})
    return web.json_response({"meta": body.meta})


async def metadata_delete(request: web.Request) -> web.Response:
    row = await load_server_to_act(request)
    key = request.match_info["key"]
    metadata = dict(row.metadata)
    if key not in metadata:
        raise NotFound("Metadata item was not found")
    del metadata[key]
    await _save_metadata(request, row, metadata)
    return web.Response(status=204)


async def _ips(request: web.Request) -> dict[str, Any]:
    row = await load_server(request)
    found = await server_addresses(database(request), [row.uuid], detailed=False)
    return found[row.uuid]


async def ips(request: web.Request) -> web.Response:
    return web.json_response({"addresses": await _ips(request)})


async def ips_network(request: web.Request) -> web.Response:
    label = request.match_info["label"]
    found = await _ips(request)
    if label not in found:
        raise NotFound(f"Network {label} could not be found.")
    return web.json_response({label: found[label]})


def _action_view(request: web.Request, action: instances.InstanceAction) -> dict[str, Any]:
    view = {"action": action.action, "instance_uuid": action.instance_uuid,
            "request_id": action.request_id, "user_id": action.user_id,
            "project_id": action.project_id, "start_time": usage_time(action.start_time),
            "message": action.message}
    if request_version(request).at_least("2.58"):
        view["updated_at"] = usage_time(action.updated_at)
    return view


async def _server_for_actions(request: web.Request) -> Instance:
    server_id = request.match_info["server_id"]
    try:
        return await load_server(request)
    except NotFound:
        # Actions of a deleted server stay visible to admins, as in Nova.
        if context(request).is_admin:
            try:
                return await instances.get(database(request), server_id, include_deleted=True)
            except instances.InstanceNotFound:
                pass
        raise


async def actions_index(request: web.Request) -> web.Response:
    row = await _server_for_actions(request)
    rows = await instances.actions_of(database(request), row.uuid)
    return web.json_response({"instanceActions": [_action_view(request, r) for r in rows]})


async def actions_show(request: web.Request) -> web.Response:
    row = await _server_for_actions(request)
    ctx = context(request)
    db = database(request)
    action = await instances.action_of_request(db, row.uuid, request.match_info["request_id"])
    if action is None:
        raise NotFound(f"Action for request_id {request.match_info['request_id']} on instance "
                       f"{row.uuid} not found")
    events = await instances.events_of(db, action.id)
    view = _action_view(request, action)
    view["events"] = [_event_view(e, ctx.is_admin) for e in events]
    return web.json_response({"instanceAction": view})


def _event_view(event: instances.InstanceActionEvent, is_admin: bool) -> dict[str, Any]:
    view = {"event": event.event, "start_time": usage_time(event.start_time),
            "finish_time": usage_time(event.finish_time), "result": event.result}
    if is_admin:
        view["traceback"] = event.traceback
    return view


def add_routes(app: web.Application, prefix: str) -> None:
    base = f"{prefix}/servers/{{server_id}}"
    app.router.add_get(f"{base}/metadata", metadata_index)
    app.router.add_post(f"{base}/metadata", metadata_merge)
    app.router.add_put(f"{base}/metadata", metadata_replace)
    app.router.add_get(f"{base}/metadata/{{key}}", metadata_show)
    app.router.add_put(f"{base}/metadata/{{key}}", metadata_put_item)
    app.router.add_delete(f"{base}/metadata/{{key}}", metadata_delete)
    app.router.add_get(f"{base}/ips", ips)
    app.router.add_get(f"{base}/ips/{{label}}", ips_network)
    app.router.add_get(f"{base}/os-instance-actions", actions_index)
    app.router.add_get(f"{base}/os-instance-actions/{{request_id}}", actions_show)
