"""Security groups through the network front door (NetworkAPI, which pushes rule changes to the
hosts); here EC2's parameters are parsed into rules and its items and codes written: Create
(with a groupId), Delete,
Describe, Authorize/Revoke ingress in both parameter styles (IpPermissions.N.* and the flat
GroupName+IpProtocol+FromPort+ToPort+CidrIp/SourceSecurityGroupName of euca2ools)."""

from __future__ import annotations

import re
from typing import Any

from cloudd.api.ec2 import ids
from cloudd.api.ec2.context import Ec2Request, Params, filter_matches
from cloudd.api.ec2.xml import Ec2Error, invalid, missing
from cloudd.network import secgroups
from cloudd.network.api import NetworkAPI, SecurityGroupRuleExists, SecurityGroupRuleMissing
from cloudd.vocab import secgroup_rules
from cloudd.vocab.network_errors import NetworkError

_NAME = re.compile(r"^[\x20-\x7e]{1,255}$")


async def _group(req: Ec2Request, name_param: str = "GroupName",
                 id_param: str = "GroupId") -> secgroups.SecurityGroup:
    if ec2 := req.params.get(id_param):
        uuid = await ids.uuid_for(req.db, ids.SECURITY_GROUP, ec2)
        key, shown = uuid, ec2
    elif name := req.params.get(name_param):
        key, shown = name, name
    else:
        raise missing(id_param)
    try:
        return await _network(req).security_group(key, req.project_id)
    except secgroups.SecurityGroupNotFound:
        raise Ec2Error("InvalidGroup.NotFound",
                       f"The security group '{shown}' does not exist") from None


def _network(req: Ec2Request) -> NetworkAPI:
    return NetworkAPI(req.host)


async def create_security_group(req: Ec2Request) -> dict[str, Any]:
    req.require_act()
    name = req.params.required("GroupName")
    description = req.params.required("GroupDescription")
    if not _NAME.match(name) or name.lower().startswith("sg-"):
        raise invalid(f"Invalid value '{name}' for GroupName.")
    try:
        group = await _network(req).create_security_group(req.project_id, name,
                                                          description[:255], req.context.user_id)
    except secgroups.SecurityGroupExists:
        raise Ec2Error("InvalidGroup.Duplicate",
                       f"The security group '{name}' already exists") from None
    return {"return": True, "groupId": await ids.ec2_id(req.db, ids.SECURITY_GROUP,
                                                        group.uuid)}


async def delete_security_group(req: Ec2Request) -> dict[str, Any]:
    req.require_act()
    group = await _group(req)
    if group.name == secgroups.DEFAULT_GROUP:
        raise Ec2Error("CannotDelete", "The default security group cannot be deleted")
    try:
        await _network(req).delete_security_group(group)
    except NetworkError as exc:
        raise Ec2Error("DependencyViolation", str(exc)) from None
    return {"return": True}


async def _permission_items(req: Ec2Request, rules: list[secgroups.StoredRule]
                            ) -> list[dict[str, Any]]:
    items = []
    sources = await _network(req).source_groups(rules)
    for rule in rules:
        item: dict[str, Any] = {"ipProtocol": rule.protocol or "-1",
                                "fromPort": rule.from_port, "toPort": rule.to_port,
                                "groups": [], "ipRanges": []}
        if rule.group_id is not None:
            source = sources.get(rule.group_id)
            if source is not None:
                item["groups"] = [{"groupId": await ids.ec2_id(req.db, ids.SECURITY_GROUP,
                                                               source.uuid),
                                   "groupName": source.name, "userId": source.project_id}]
        elif rule.cidr:
            item["ipRanges"] = [{"cidrIp": rule.cidr}]
        items.append(item)
    return items


async def describe_security_groups(req: Ec2Request) -> dict[str, Any]:
    req.require_read()
    network = _network(req)
    groups = await network.security_groups(req.project_id)
    names, wanted_ids = req.params.strings("GroupName"), req.params.strings("GroupId")
    items = []
    for group in groups:
        sg = await ids.ec2_id(req.db, ids.SECURITY_GROUP, group.uuid)
        if (names or wanted_ids) and group.name not in names and sg not in wanted_ids:
            continue
        fields = {"group-name": group.name, "group-id": sg, "description": group.description,
                  "owner-id": group.project_id}
        if not all(filter_matches(v, fields.get(k)) for k, v in req.params.filters().items()):
            continue
        items.append({"ownerId": group.project_id, "groupId": sg, "groupName": group.name,
                      "groupDescription": group.description,
                      "ipPermissions": await _permission_items(
                          req, await network.rules_of([group])),
                      "ipPermissionsEgress": []})
    found = {i["groupName"] for i in items} | {i["groupId"] for i in items}
    for wanted in names + wanted_ids:
        if wanted not in found:
            raise Ec2Error("InvalidGroup.NotFound", f"The security group '{wanted}' does not exist")
    return {"securityGroupInfo": items}


def _parsed(protocol: Any, from_port: Any, to_port: Any, cidr: str | None,
            source: int | None) -> secgroup_rules.SecurityGroupRule:
    try:
        return secgroup_rules.parse_rule(protocol, from_port, to_port, cidr, source)
    except secgroup_rules.RuleError as exc:
        raise invalid(exc.message) from None


async def _rules_of_permission(req: Ec2Request, perm: Params) -> list[secgroup_rules.SecurityGroupRule]:
    """One permission's rules (one per CIDR and per source group), each parsed by the model
    every API shares; a bad value is InvalidParameterValue and nothing is stored."""
    protocol = perm.required("IpProtocol")
    from_port, to_port = perm.get("FromPort"), perm.get("ToPort")
    try:
        kind = secgroup_rules.parse_protocol(protocol)
    except secgroup_rules.RuleError as exc:
        raise invalid(exc.message) from None
    if kind is None:
        from_port = to_port = None  # all protocols: AWS sends -1 ports with them
    elif kind != "icmp" and (from_port is None or to_port is None):
        raise invalid(f"Invalid port range: FromPort and ToPort are needed for {kind}.")
    cidrs = perm.strings("CidrIp") + [r.required("CidrIp") for r in perm.members("IpRanges")]
    if perm.get("CidrIp"):
        cidrs.append(perm.required("CidrIp"))
    found = [_parsed(protocol, from_port, to_port, cidr, None) for cidr in cidrs]
    sources = [(g.get("GroupId"), g.get("GroupName")) for g in perm.members("Groups")]
    if perm.get("SourceSecurityGroupName"):
        sources.append((None, perm.get("SourceSecurityGroupName")))
    for group_id, group_name in sources:
        key = await ids.uuid_for(req.db, ids.SECURITY_GROUP, group_id) if group_id else group_name
        try:
            source = await _network(req).security_group(key or "", req.project_id)
        except secgroups.SecurityGroupNotFound:
            raise Ec2Error("InvalidGroup.NotFound",
                           f"The security group '{group_id or group_name}' does not exist") from None
        found.append(_parsed(protocol, from_port, to_port, None, source.id))
    if not found:  # Nova's default: a rule without a source opens to everyone
        found.append(_parsed(protocol, from_port, to_port, None, None))
    return found


async def _requested_rules(req: Ec2Request) -> list[secgroup_rules.SecurityGroupRule]:
    permissions = req.params.members("IpPermissions")
    if not permissions:
        if "IpProtocol" not in req.params:
            raise missing("IpPermissions")
        permissions = [req.params]  # the flat, pre-2009 style euca2ools sends
    found: list[secgroup_rules.SecurityGroupRule] = []
    for perm in permissions:
        found += await _rules_of_permission(req, perm)
    return found


async def authorize_ingress(req: Ec2Request) -> dict[str, Any]:
    req.require_act()
    group = await _group(req)
    requested = await _requested_rules(req)
    try:
        await _network(req).add_security_group_rules(group, requested)
    except SecurityGroupRuleExists:
        raise Ec2Error("InvalidPermission.Duplicate",
                       "the specified rule already exists in that group") from None
    return {"return": True}


async def revoke_ingress(req: Ec2Request) -> dict[str, Any]:
    req.require_act()
    group = await _group(req)
    requested = await _requested_rules(req)
    try:
        await _network(req).revoke_security_group_rules(group, requested)
    except SecurityGroupRuleMissing as exc:
        raise Ec2Error("InvalidPermission.NotFound", str(exc)) from None
    return {"return": True}
