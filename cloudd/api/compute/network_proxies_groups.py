"""Nova's security group proxies: os-security-groups and os-security-group-rules (below 2.36),
a server's groups (GET /servers/{id}/os-security-groups) and the addSecurityGroup /
removeSecurityGroup actions (every version), over NetworkAPI's security group operations."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from cloudd.api.compute import server_actions
from cloudd.api.compute.common import context, load_server, load_server_to_act
from cloudd.api.compute.errors import BadRequest, Conflict, NotFound
from cloudd.api.compute.network_proxies_common import _body, _legacy, _network, _owner
from cloudd.network import secgroups
from cloudd.network.api import MembershipUnchanged, NetworkAPI
from cloudd.vocab import secgroup_rules
from cloudd.vocab.network_errors import NetworkError


def rule_view(rule: secgroups.StoredRule,
              sources: dict[int, secgroups.SecurityGroup]) -> dict[str, Any]:
    source = sources.get(rule.group_id) if rule.group_id is not None else None
    return {"id": rule.uuid, "parent_group_id": rule.parent_uuid,
            "ip_protocol": rule.protocol, "from_port": rule.from_port,
            "to_port": rule.to_port,
            "ip_range": {"cidr": rule.cidr} if source is None and rule.cidr else {},
            "group": {"name": source.name, "tenant_id": source.project_id} if source else {}}


async def _views(api: NetworkAPI, groups: list[secgroups.SecurityGroup]
                 ) -> list[dict[str, Any]]:
    rules = await api.rules_of(groups)
    sources = await api.source_groups(rules)
    return [{"id": g.uuid, "name": g.name, "description": g.description,
             "tenant_id": g.project_id,
             "rules": [rule_view(r, sources) for r in rules if r.parent_group_id == g.id]}
            for g in groups]


async def _group(request: web.Request, key: str, project_id: str | None
                 ) -> secgroups.SecurityGroup:
    try:
        return await _network(request).security_group(key, project_id)
    except secgroups.SecurityGroupNotFound as exc:
        raise NotFound(str(exc)) from None


async def list_groups(request: web.Request) -> web.Response:
    project_id = _legacy(request)
    api = _network(request)
    groups = await api.security_groups(project_id or _owner(request))
    return web.json_response({"security_groups": await _views(api, groups)})


async def show_group(request: web.Request) -> web.Response:
    group = await _group(request, request.match_info["id"], _legacy(request))
    return web.json_response({"security_group": (await _views(_network(request), [group]))[0]})


async def create_group(request: web.Request) -> web.Response:
    _legacy(request)
    body = await _body(request, "security_group")
    name, description = body.get("name"), body.get("description", "")
    if not isinstance(name, str) or not name.strip() or not isinstance(description, str):
        raise BadRequest("Security group name and description must be strings.")
    api = _network(request)
    try:
        group = await api.create_security_group(_owner(request), name, description,
                                                context(request).user_id)
    except secgroups.SecurityGroupExists as exc:
        raise BadRequest(str(exc)) from None
    return web.json_response({"security_group": (await _views(api, [group]))[0]})


async def delete_group(request: web.Request) -> web.Response:
    group = await _group(request, request.match_info["id"], _legacy(request))
    try:
        await _network(request).delete_security_group(group)
    except NetworkError as exc:
        raise BadRequest(str(exc)) from None
    return web.Response(status=202)


async def create_rule(request: web.Request) -> web.Response:
    project_id = _legacy(request)
    body = await _body(request, "security_group_rule")
    group = await _group(request, str(body.get("parent_group_id", "")), project_id)
    source = None
    if body.get("group_id"):
        source = (await _group(request, str(body["group_id"]), project_id)).id
    try:  # Nova's messages: "Invalid cidr ...", "Invalid port range ...", "Invalid IP protocol ..."
        parsed = secgroup_rules.parse_rule(body.get("ip_protocol"), body.get("from_port"),
                                  body.get("to_port"), None if source else body.get("cidr"), source)
    except secgroup_rules.RuleError as exc:
        raise BadRequest(exc.message) from None
    api = _network(request)
    # this API has always stored a rule the group has again (Neutron's and EC2's refuse it)
    (rule,) = await api.add_security_group_rules(group, [parsed], unique=False)
    (view,) = [r for r in (await _views(api, [group]))[0]["rules"] if r["id"] == rule.uuid]
    return web.json_response({"security_group_rule": view})


async def delete_rule(request: web.Request) -> web.Response:
    project_id = _legacy(request)
    key = request.match_info["id"]
    api = _network(request)
    try:
        rule = await api.security_group_rule(key, project_id)
    except secgroups.SecurityGroupNotFound as exc:
        raise NotFound(str(exc)) from None
    await api.delete_security_group_rule(rule)
    return web.Response(status=202)


async def server_groups(request: web.Request) -> web.Response:
    row = await load_server(request)
    api = _network(request)
    groups = await api.server_security_groups(row.uuid)
    return web.json_response({"security_groups": await _views(api, groups)})


async def _membership(request: web.Request, args: Any, add: bool) -> web.StreamResponse:
    row = await load_server_to_act(request)
    if not isinstance(args, dict) or not isinstance(args.get("name"), str):
        raise BadRequest("The action needs a security group 'name'.")
    group = await _group(request, args["name"], row.project_id)
    try:
        await _network(request).change_membership(row.uuid, row.project_id, group, add)
    except MembershipUnchanged as exc:
        if exc.member:
            raise Conflict(f"Security group {args['name']} is already in instance {row.uuid}") \
                from None
        raise BadRequest(f"Security group {args['name']} is not in the instance") from None
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
