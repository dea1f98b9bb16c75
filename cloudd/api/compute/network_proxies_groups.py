"""Nova's security group proxies: os-security-groups and os-security-group-rules (below 2.36),
a server's groups (GET /servers/{id}/os-security-groups) and the addSecurityGroup /
removeSecurityGroup actions (every version)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from cloudd.api.compute import server_actions
from cloudd.api.compute.common import context, database, load_server, load_server_to_act
from cloudd.api.compute.errors import BadRequest, Conflict, NotFound
from cloudd.api.compute.network_proxies import _body, _legacy, _owner, _service
from cloudd.db import Executor
from cloudd.network import rules, secgroups
from cloudd.network.ipam import NetworkError


def rule_view(rule: dict[str, Any], names: dict[int, dict[str, Any]]) -> dict[str, Any]:
    source = names.get(rule["group_id"]) if rule["group_id"] is not None else None
    return {"id": rule["uuid"], "parent_group_id": rule["parent_uuid"],
            "ip_protocol": rule["protocol"], "from_port": rule["from_port"],
            "to_port": rule["to_port"],
            "ip_range": {"cidr": rule["cidr"]} if source is None and rule["cidr"] else {},
            "group": {"name": source["name"], "tenant_id": source["project_id"]} if source else {}}


async def _views(db: Executor, groups: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rules = await secgroups.rules_of(db, [g["id"] for g in groups])
    sources = {r["group_id"] for r in rules if r["group_id"] is not None}
    names = {int(g["id"]): g for g in await db.fetch("SELECT * FROM security_groups")
             if g["id"] in sources}
    return [{"id": g["uuid"], "name": g["name"], "description": g["description"],
             "tenant_id": g["project_id"],
             "rules": [rule_view(r, names) for r in rules if r["parent_group_id"] == g["id"]]}
            for g in groups]


async def _group(request: web.Request, key: str, project_id: str | None) -> dict[str, Any]:
    try:
        return await secgroups.get_group(database(request), key, project_id)
    except secgroups.SecurityGroupNotFound as exc:
        raise NotFound(str(exc)) from None


async def list_groups(request: web.Request) -> web.Response:
    project_id = _legacy(request)
    db = database(request)
    groups = await secgroups.list_groups(db, project_id or _owner(request))
    return web.json_response({"security_groups": await _views(db, groups)})


async def show_group(request: web.Request) -> web.Response:
    group = await _group(request, request.match_info["id"], _legacy(request))
    return web.json_response({"security_group": (await _views(database(request), [group]))[0]})


async def create_group(request: web.Request) -> web.Response:
    _legacy(request)
    body = await _body(request, "security_group")
    name, description = body.get("name"), body.get("description", "")
    if not isinstance(name, str) or not name.strip() or not isinstance(description, str):
        raise BadRequest("Security group name and description must be strings.")
    db = database(request)
    await secgroups.ensure_default(db, _owner(request))
    try:
        group = await secgroups.create_group(db, _owner(request), name, description,
                                             context(request).user_id)
    except secgroups.SecurityGroupExists as exc:
        raise BadRequest(str(exc)) from None
    return web.json_response({"security_group": (await _views(db, [group]))[0]})


async def delete_group(request: web.Request) -> web.Response:
    group = await _group(request, request.match_info["id"], _legacy(request))
    try:
        await secgroups.delete_group(database(request), group)
    except NetworkError as exc:
        raise BadRequest(str(exc)) from None
    return web.Response(status=202)


async def create_rule(request: web.Request) -> web.Response:
    project_id = _legacy(request)
    body = await _body(request, "security_group_rule")
    group = await _group(request, str(body.get("parent_group_id", "")), project_id)
    source = None
    if body.get("group_id"):
        source = int((await _group(request, str(body["group_id"]), project_id))["id"])
    try:  # Nova's messages: "Invalid cidr ...", "Invalid port range ...", "Invalid IP protocol ..."
        parsed = rules.parse_rule(body.get("ip_protocol"), body.get("from_port"),
                                  body.get("to_port"), None if source else body.get("cidr"), source)
    except rules.RuleError as exc:
        raise BadRequest(exc.message) from None
    rule = await _service(request).add_security_group_rule(group, parsed)
    (view,) = [r for r in (await _views(database(request), [group]))[0]["rules"]
               if r["id"] == rule["uuid"]]
    return web.json_response({"security_group_rule": view})


async def delete_rule(request: web.Request) -> web.Response:
    project_id = _legacy(request)
    key = request.match_info["id"]
    try:
        rule = await secgroups.get_rule(database(request), key, project_id)
    except secgroups.SecurityGroupNotFound as exc:
        raise NotFound(str(exc)) from None
    await _service(request).delete_security_group_rule(rule)
    return web.Response(status=202)


async def server_groups(request: web.Request) -> web.Response:
    row = await load_server(request)
    db = database(request)
    groups = await secgroups.groups_of_instance(db, row["uuid"])
    return web.json_response({"security_groups": await _views(db, groups)})


async def _membership(request: web.Request, args: Any, add: bool) -> web.StreamResponse:
    row = await load_server_to_act(request)
    if not isinstance(args, dict) or not isinstance(args.get("name"), str):
        raise BadRequest("The action needs a security group 'name'.")
    group = await _group(request, args["name"], row["project_id"])
    db = database(request)
    member = any(g["id"] == group["id"] for g in await secgroups.groups_of_instance(db, row["uuid"]))
    if add == member:
        state = "already in" if add else "not in"
        raise Conflict(f"Security group {args['name']} is {state} instance {row['uuid']}") \
            if add else BadRequest(f"Security group {args['name']} is {state} the instance")
    if add:
        await secgroups.add_instance(db, group, row["uuid"])
    else:
        await secgroups.remove_instance(db, group, row["uuid"])
    await _service(request).refresh_project(row["project_id"])
    return web.Response(status=202)


async def add_security_group(request: web.Request, args: Any) -> web.StreamResponse:
    return await _membership(request, args, add=True)


async def remove_security_group(request: web.Request, args: Any) -> web.StreamResponse:
    return await _membership(request, args, add=False)


def add_routes(app: web.Application, prefix: str) -> None:
    app.router.add_get(f"{prefix}/os-security-groups", list_groups)
    app.router.add_post(f"{prefix}/os-security-groups", create_group)
    app.router.add_get(f"{prefix}/os-security-groups/{{id}}", show_group)
    app.router.add_delete(f"{prefix}/os-security-groups/{{id}}", delete_group)
    app.router.add_post(f"{prefix}/os-security-group-rules", create_rule)
    app.router.add_delete(f"{prefix}/os-security-group-rules/{{id}}", delete_rule)
    app.router.add_get(f"{prefix}/servers/{{server_id}}/os-security-groups", server_groups)
    server_actions.ACTIONS.update(addSecurityGroup=add_security_group,
                                  removeSecurityGroup=remove_security_group)
