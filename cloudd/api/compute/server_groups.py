"""/os-server-groups: create, list, show, delete (policies below 2.64, policy + rules from 2.64)."""

from __future__ import annotations

import json
import time
import uuid as uuidlib
from typing import Annotated, Any, Literal

from aiohttp import web
from pydantic import Field, StringConstraints

from cloudd.api.compute.common import context, database, is_uuid, parse_limit
from cloudd.api.compute.errors import BadRequest, Forbidden, NotFound, parse_body
from cloudd.api.compute.microversion import APIVersion, request_version
from cloudd.api.compute.server_models import Strict
from cloudd.compute import quota
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


async def _members(db: Executor, group_id: int) -> list[str]:
    rows = await db.fetch(
        "SELECT m.instance_uuid FROM instance_group_members m JOIN instances i"
        " ON i.uuid = m.instance_uuid AND i.deleted = 0 WHERE m.group_id = $1 ORDER BY m.id",
        group_id)
    return [r["instance_uuid"] for r in rows]


async def _view(db: Executor, row: dict[str, Any], version: APIVersion) -> dict[str, Any]:
    view: dict[str, Any] = {"id": row["uuid"], "name": row["name"]}
    if version.at_least(POLICY_SINCE):
        view["policy"] = row["policy"]
        view["rules"] = json.loads(row["rules"] or "{}")
    else:
        view["policies"] = [row["policy"]]
    view["members"] = await _members(db, row["id"])
    if not version.at_least(POLICY_SINCE):
        view["metadata"] = {}
    if version.at_least("2.13"):
        view["project_id"] = row["project_id"]
        view["user_id"] = row["user_id"]
    return view


_SELECT = ("SELECT g.*, p.policy, p.rules FROM instance_groups g"
           " JOIN instance_group_policy p ON p.group_id = g.id")


async def create(request: web.Request) -> web.Response:
    ctx = context(request)
    ctx.require_act(ctx.project_id)
    version = request_version(request)
    model = GroupCreateBody if version.at_least(POLICY_SINCE) else GroupCreateLegacyBody
    name, policy, rules = _parse_create(version, await parse_body(request, model))
    project_id = str(ctx.project_id)
    group_uuid = str(uuidlib.uuid4())
    db = database(request)
    async with db.transaction() as tx:
        await quota.lock_project(tx, project_id)
        try:
            await quota.check(tx, project_id, {"server_groups": 1})
        except quota.QuotaExceeded:
            raise Forbidden("Quota exceeded, too many server groups.") from None
        group_id = await tx.fetchval(
            "INSERT INTO instance_groups (uuid, name, project_id, user_id, created_at)"
            " VALUES ($1, $2, $3, $4, $5) RETURNING id",
            group_uuid, name, project_id, ctx.user_id, time.time())
        await tx.execute("INSERT INTO instance_group_policy (group_id, policy, rules)"
                         " VALUES ($1, $2, $3)", group_id, policy, json.dumps(rules))
        row = await tx.fetchrow(f"{_SELECT} WHERE g.id = $1", group_id)
        assert row is not None
        view = await _view(tx, row, version)
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
        rows = await db.fetch(f"{_SELECT} ORDER BY g.id")
    else:
        rows = await db.fetch(f"{_SELECT} WHERE g.project_id = $1 ORDER BY g.id", ctx.project_id)
    version = request_version(request)
    page = rows[offset:offset + limit]
    return web.json_response({"server_groups": [await _view(db, r, version) for r in page]})


async def _load(request: web.Request) -> dict[str, Any]:
    """The group if the caller may see it; 404 otherwise (Nova hides other projects' groups)."""
    ctx = context(request)
    group_id = request.match_info["group_id"]
    row = None
    if is_uuid(group_id):
        row = await database(request).fetchrow(f"{_SELECT} WHERE g.uuid = $1", group_id.lower())
    if row is None or (not ctx.is_admin and row["project_id"] != ctx.project_id):
        raise NotFound(f"Instance group {group_id} could not be found.")
    return row


async def show(request: web.Request) -> web.Response:
    row = await _load(request)
    context(request).require_read(row["project_id"])
    view = await _view(database(request), row, request_version(request))
    return web.json_response({"server_group": view})


async def delete(request: web.Request) -> web.Response:
    row = await _load(request)
    context(request).require_act(row["project_id"])
    await database(request).execute("DELETE FROM instance_groups WHERE id = $1", row["id"])
    return web.Response(status=204)


async def find_for_hint(db: Executor, hint: Any, project_id: str) -> str:
    """The uuid of the server group a `group` scheduler hint names (400 when there is none)."""
    if not isinstance(hint, str) or not is_uuid(hint):
        raise BadRequest(f"Invalid input for field/attribute group. Value: {hint!r} is not a "
                         "'uuid'")
    found = await db.fetchval("SELECT uuid FROM instance_groups WHERE uuid = $1 AND project_id = $2",
                              hint.lower(), project_id)
    if found is None:
        raise BadRequest(f"Instance group {hint} could not be found.")
    return str(found)


def add_routes(app: web.Application, prefix: str) -> None:
    app.router.add_post(f"{prefix}/os-server-groups", create)
    app.router.add_get(f"{prefix}/os-server-groups", index)
    app.router.add_get(f"{prefix}/os-server-groups/{{group_id}}", show)
    app.router.add_delete(f"{prefix}/os-server-groups/{{group_id}}", delete)
