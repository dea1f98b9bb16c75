"""/os-server-groups: create, list, show, delete (policies below 2.64, policy + rules from 2.64)."""

from __future__ import annotations

import time
import uuid as uuidlib
from typing import Annotated, Any, Literal

from aiohttp import web
from pydantic import Field, StringConstraints

from cloudd.api.compute.common import context, database, is_uuid, parse_limit
from cloudd.api.compute.errors import BadRequest, Forbidden, NotFound, parse_body
from cloudd.api.compute.microversion import APIVersion, request_version
from cloudd.api.compute.server_models import Strict
from cloudd.compute import quota, server_groups
from cloudd.compute.server_groups import ServerGroup
from cloudd.db import Executor

Policy = Literal["affinity", "anti-affinity", "soft-affinity", "soft-anti-affinity"]
SOFT_POLICIES_SINCE = "2.15"
POLICY_SINCE = "2.64"
GroupName = Annotated[str, StringConstraints(strict=True, min_length=1, max_length=255)]


class Rules(Strict):
    max_server_per_host: int = Field(ge=1)


class GroupCreateLegacy(Strict):
    """Below 2.64: exactly one policy, in a list."""

    name: GroupName
    policies: list[Policy] = Field(min_length=1, max_length=1)


class GroupCreate(Strict):
    """From 2.64: one policy and, for anti-affinity only, rules."""

    name: GroupName
    policy: Policy
    rules: Rules | None = None


class GroupCreateLegacyBody(Strict):
    server_group: GroupCreateLegacy


class GroupCreateBody(Strict):
    server_group: GroupCreate


def _parse_create(version: APIVersion, body: Any) -> tuple[str, str, dict[str, int]]:
    """(name, policy, rules) from a create body valid at `version`."""
    if version.at_least(POLICY_SINCE):
        spec = body.server_group
        if spec.rules is not None and spec.policy != "anti-affinity":
            raise BadRequest(f"Only anti-affinity policy supports rules, not {spec.policy}.")
        rules = spec.rules.model_dump() if spec.rules is not None else {}
        name, policy = spec.name, spec.policy
    else:
        name, policy, rules = body.server_group.name, body.server_group.policies[0], {}
    if policy.startswith("soft-") and not version.at_least(SOFT_POLICIES_SINCE):
        raise BadRequest(f"Invalid input: policy {policy} is only available from "
                         f"microversion {SOFT_POLICIES_SINCE}")
    return name, policy, rules


async def _view(db: Executor, group: ServerGroup, version: APIVersion) -> dict[str, Any]:
    view: dict[str, Any] = {"id": group.uuid, "name": group.name}
    if version.at_least(POLICY_SINCE):
        view["policy"] = group.policy
        view["rules"] = group.rules
    else:
        view["policies"] = [group.policy]
    view["members"] = await server_groups.live_members(db, group.id)
    if not version.at_least(POLICY_SINCE):
        view["metadata"] = {}
    if version.at_least("2.13"):
        view["project_id"] = group.project_id
        view["user_id"] = group.user_id
    return view


async def create(request: web.Request) -> web.Response:
    ctx = context(request)
    ctx.require_act(ctx.project_id)
    version = request_version(request)
    model = GroupCreateBody if version.at_least(POLICY_SINCE) else GroupCreateLegacyBody
    name, policy, rules = _parse_create(version, await parse_body(request, model))
    project_id = str(ctx.project_id)
    db = database(request)
    async with db.transaction() as tx:
        await quota.lock_project(tx, project_id)
        try:
            await quota.check(tx, project_id, {"server_groups": 1}, ctx.user_id)
        except quota.QuotaExceeded:
            raise Forbidden("Quota exceeded, too many server groups.") from None
        group = await server_groups.create(
            tx, uuid=str(uuidlib.uuid4()), name=name, project_id=project_id,
            user_id=ctx.user_id, policy=policy, rules=rules, now=time.time())
        view = await _view(tx, group, version)
    return web.json_response({"server_group": view})


def _all_projects(request: web.Request) -> bool:
    value = request.query.get("all_projects")
    return value is not None and value.lower() not in ("0", "false", "off", "no")


def _offset(query: Any) -> int:
    try:
        offset = int(query.get("offset", "0"))
    except ValueError:
        raise BadRequest("offset param must be an integer") from None
    if offset < 0:
        raise BadRequest("offset param must be positive")
    return offset


async def index(request: web.Request) -> web.Response:
    ctx = context(request)
    ctx.require_read(ctx.project_id)
    limit, offset = parse_limit(request.query), _offset(request.query)
    db = database(request)
    if ctx.is_admin and _all_projects(request):
        groups = await server_groups.list_all(db)
    elif ctx.project_id is None:  # an unscoped admin without all_projects: no project's groups
        groups = []
    else:
        groups = await server_groups.list_for_project(db, ctx.project_id)
    version = request_version(request)
    page = groups[offset:offset + limit]
    return web.json_response({"server_groups": [await _view(db, r, version) for r in page]})


async def _load(request: web.Request) -> ServerGroup:
    """The group if the caller may see it; 404 otherwise (Nova hides other projects' groups)."""
    ctx = context(request)
    group_id = request.match_info["group_id"]
    group = None
    if is_uuid(group_id):
        group = await server_groups.get(database(request), group_id.lower())
    if group is None or (not ctx.is_admin and group.project_id != ctx.project_id):
        raise NotFound(f"Instance group {group_id} could not be found.")
    return group


async def show(request: web.Request) -> web.Response:
    group = await _load(request)
    context(request).require_read(group.project_id)
    view = await _view(database(request), group, request_version(request))
    return web.json_response({"server_group": view})


async def delete(request: web.Request) -> web.Response:
    group = await _load(request)
    context(request).require_act(group.project_id)
    await server_groups.delete(database(request), group.id)
    return web.Response(status=204)


def add_routes(app: web.Application, prefix: str) -> None:
    app.router.add_post(f"{prefix}/os-server-groups", create)
    app.router.add_get(f"{prefix}/os-server-groups", index)
    app.router.add_get(f"{prefix}/os-server-groups/{{group_id}}", show)
    app.router.add_delete(f"{prefix}/os-server-groups/{{group_id}}", delete)
