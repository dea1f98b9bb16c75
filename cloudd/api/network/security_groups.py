"""/v2.0/security-groups and /security-group-rules over nova-network's groups (ingress rules:
a protocol and port range open to a CIDR or to the members of another group). The operations
are NetworkAPI's (rule changes reach the hosts' firewalls, as EC2's do); here Neutron's body is
read and checked, its refusals named and the records rendered."""

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
    reader_project,
)
from cloudd.api.network.errors import BadRequest, Conflict, NotFound, read_resource
from cloudd.network import secgroups
from cloudd.network.api import NetworkAPI, SecurityGroupRuleExists
from cloudd.vocab import secgroup_rules
from cloudd.vocab.network_errors import NetworkError


def rule_view(rule: secgroups.StoredRule) -> dict[str, Any]:
    icmp_any = rule.protocol == "icmp"
    low, high = rule.from_port, rule.to_port
    if icmp_any:  # nova-network's -1 is Neutron's "any type/code"
        low, high = (None if low == -1 else low), (None if high == -1 else high)
    return {"id": rule.uuid, "direction": "ingress", "ethertype": "IPv4",
            "protocol": rule.protocol, "port_range_min": low, "port_range_max": high,
            "remote_ip_prefix": rule.cidr if rule.group_id is None else None,
            "remote_group_id": rule.group_uuid, "remote_address_group_id": None,
            "security_group_id": rule.parent_uuid, "project_id": rule.project_id,
            "tenant_id": rule.project_id, "description": "", "tags": [],
            "created_at": isotime(rule.created_at), "updated_at": isotime(rule.created_at),
            "revision_number": 1, "belongs_to_default_sg": None, "normalized_cidr":
            rule.cidr if rule.group_id is None else None}


def group_view(group: secgroups.SecurityGroup, rules: list[secgroups.StoredRule]
               ) -> dict[str, Any]:
    return {"id": group.uuid, "name": group.name, "description": group.description,
            "project_id": group.project_id, "tenant_id": group.project_id,
            "security_group_rules": [rule_view(r) for r in rules if r.parent_group_id ==
                                     group.id],
            "stateful": True, "shared": False, "tags": [], "revision_number": 1,
            "created_at": isotime(group.created_at), "updated_at": isotime(group.created_at)}


async def _group_views(api: NetworkAPI, groups: list[secgroups.SecurityGroup]
                       ) -> list[dict[str, Any]]:
    rules = await api.rules_of(groups)  # one query for all
    return [group_view(g, rules) for g in groups]


async def _load_group(request: web.Request, project_id: str | None) -> secgroups.SecurityGroup:
    return await _group_by_uuid(network_api(request), request.match_info["id"], project_id)


async def list_groups(request: web.Request) -> web.Response:
    api = network_api(request)
    project_id = reader_project(request)
    # an admin's own project has its default group too
    groups = await api.security_groups(project_id, own_project=str(context(request).project_id))
    return list_response(request, "security_groups", await _group_views(api, groups))


async def show_group(request: web.Request) -> web.Response:
    group = await _load_group(request, reader_project(request))
    return item_response(request, "security_group",
                         (await _group_views(network_api(request), [group]))[0])


async def create_group(request: web.Request) -> web.Response:
    body = await read_resource(request, "security_group")
    actor = actor_project(request)
    ctx = context(request)
    owner = str(body.get("project_id") or body.get("tenant_id") or ctx.project_id)
    if actor is not None and owner != actor:
        raise NotFound(f"Project {owner} could not be found.")
    name = body.get("name")
    if not isinstance(name, str) or not name or len(name) > 255:
        raise BadRequest("name must be a non-empty string of at most 255 characters.")
    if name == secgroups.DEFAULT_GROUP:
        raise Conflict("Default security group already exists.", "SecurityGroupDefaultAlreadyExists")
    api = network_api(request)
    try:
        group = await api.create_security_group(owner, name, str(body.get("description") or ""),
                                                ctx.user_id)
    except secgroups.SecurityGroupExists as exc:
        raise Conflict(str(exc)) from None
    return item_response(request, "security_group", (await _group_views(api, [group]))[0], 201)


async def delete_group(request: web.Request) -> web.Response:
    project_id = actor_project(request)
    group = await _load_group(request, project_id)
    try:
        await network_api(request).delete_security_group(group, allow_default=project_id is None)
    except NetworkError as exc:
        raise Conflict(str(exc), "SecurityGroupInUse") from None
    return web.Response(status=204)


async def _visible_rules(request: web.Request) -> list[dict[str, Any]]:
    project_id = reader_project(request)
    return [rule_view(r) for r in await network_api(request).visible_rules(project_id)]


async def list_rules(request: web.Request) -> web.Response:
    return list_response(request, "security_group_rules", await _visible_rules(request))


async def show_rule(request: web.Request) -> web.Response:
    key = request.match_info["id"]
    for rule in await _visible_rules(request):
        if rule["id"] == key:
            return item_response(request, "security_group_rule", rule)
    raise NotFound(f"Security group rule {key} does not exist", "SecurityGroupRuleNotFound")


# RuleError.field -> Neutron's exception type for it (neutron/extensions/securitygroup.py)
_RULE_ERRORS = {"protocol": "SecurityGroupRuleInvalidProtocol",
                "port": "SecurityGroupInvalidPortValue", "range": "SecurityGroupInvalidPortRange",
                "icmp": "SecurityGroupInvalidIcmpValue", "cidr": "InvalidInput"}
_ATTRIBUTES = {"protocol": "protocol", "port": "port_range_min/port_range_max",
               "range": "port_range_min/port_range_max", "icmp": "port_range_min/port_range_max",
               "cidr": "remote_ip_prefix"}


def _rule_fields(body: dict[str, Any], source_id: int | None) -> secgroup_rules.SecurityGroupRule:
    if body.get("direction", "ingress") != "ingress":
        raise BadRequest("Only ingress rules are filtered: all egress traffic is allowed.",
                         "SecurityGroupRuleInvalidDirection")
    if body.get("ethertype", "IPv4") != "IPv4":
        raise BadRequest("Only IPv4 rules are supported.", "SecurityGroupRuleInvalidEtherType")
    try:  # a single port_range_min is one port, as in Neutron
        return secgroup_rules.parse_rule(body.get("protocol"), body.get("port_range_min"),
                                body.get("port_range_max"), body.get("remote_ip_prefix"), source_id)
    except secgroup_rules.RuleError as exc:
        raise BadRequest(f"Invalid input for {_ATTRIBUTES[exc.field]}. Reason: {exc.message}",
                         _RULE_ERRORS[exc.field]) from None


async def create_rule(request: web.Request) -> web.Response:
    body = await read_resource(request, "security_group_rule")
    project_id = actor_project(request)
    api = network_api(request)
    group = await _group_by_uuid(api, body.get("security_group_id"), project_id)
    source_id = None
    if body.get("remote_group_id"):
        if body.get("remote_ip_prefix") is not None:
            raise BadRequest("Only remote_ip_prefix or remote_group_id may be given.")
        source_id = (await _group_by_uuid(api, body["remote_group_id"], project_id)).id
    parsed = _rule_fields(body, source_id)
    try:
        (rule,) = await api.add_security_group_rules(group, [parsed])
    except SecurityGroupRuleExists as exc:
        raise Conflict(str(exc), "SecurityGroupRuleExists") from None
    return item_response(request, "security_group_rule", rule_view(rule), 201)


async def _group_by_uuid(api: NetworkAPI, key: Any, project_id: str | None
                         ) -> secgroups.SecurityGroup:
    try:
        return await api.security_group_by_uuid(str(key or ""), project_id)
    except secgroups.SecurityGroupNotFound:
        raise NotFound(f"Security group {key} does not exist", "SecurityGroupNotFound") from None


async def delete_rule(request: web.Request) -> web.Response:
    key = request.match_info["id"]
    project_id = actor_project(request)
    api = network_api(request)
    try:
        rule = await api.security_group_rule(key, project_id)
    except secgroups.SecurityGroupNotFound:
        raise NotFound(f"Security group rule {key} does not exist",
                       "SecurityGroupRuleNotFound") from None
    await api.delete_security_group_rule(rule)
    return web.Response(status=204)


def add_routes(app: web.Application, prefix: str) -> None:
    app.router.add_get(f"{prefix}/security-groups", list_groups)
    app.router.add_post(f"{prefix}/security-groups", create_group)
    app.router.add_get(f"{prefix}/security-groups/{{id}}", show_group)
    app.router.add_delete(f"{prefix}/security-groups/{{id}}", delete_group)
    app.router.add_get(f"{prefix}/security-group-rules", list_rules)
    app.router.add_post(f"{prefix}/security-group-rules", create_rule)
    app.router.add_get(f"{prefix}/security-group-rules/{{id}}", show_rule)
    app.router.add_delete(f"{prefix}/security-group-rules/{{id}}", delete_rule)
