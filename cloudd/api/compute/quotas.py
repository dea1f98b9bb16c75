"""/os-quota-sets (show, defaults, detail; update and delete for admins) and /limits.

Limits and counted usage come from cloudd.compute.quota (defaults + table `quotas`). With
`?user_id=` (Nova's per-user quotas) show, detail, update and delete are the user's within
the project: a user's limit is at most the project's and at least what the user uses."""

from __future__ import annotations

import time
from collections.abc import Collection
from typing import Any

from aiohttp import web

from cloudd.api.compute.common import context, database
from cloudd.api.compute.errors import BadRequest, read_json
from cloudd.api.compute.microversion import request_version
from cloudd.compute import quota
from cloudd.compute.quota import DEFAULT_QUOTAS
from cloudd.db import Executor

__all__ = ["DEFAULT_QUOTAS", "project_quotas", "project_usage"]
_NETWORK_KEYS = ("floating_ips", "fixed_ips", "security_groups", "security_group_rules")
_INJECTED_KEYS = ("injected_files", "injected_file_content_bytes", "injected_file_path_bytes")
MAX_LIMIT = 2**31 - 1  # Nova's db.MAX_INT


async def project_usage(db: Executor, project_id: str) -> dict[str, int]:
    return await quota.usage(db, project_id)


async def project_quotas(db: Executor, project_id: str) -> dict[str, int]:
    """The defaults with the project's overrides (PUT here, or `cloudd manage quota set`)."""
    return await quota.limits(db, project_id)


def _quota_keys(request: web.Request, limits: dict[str, int] = DEFAULT_QUOTAS) -> dict[str, int]:
    version = request_version(request)
    quotas = dict(limits)
    for key in (_NETWORK_KEYS if version.at_least("2.36") else ()):
        quotas.pop(key)
    for key in (_INJECTED_KEYS if version.at_least("2.57") else ()):
        quotas.pop(key)
    return quotas


def _target_project(request: web.Request) -> str:
    ctx = context(request)
    project_id = request.match_info["project_id"]
    if not ctx.is_admin and project_id != ctx.project_id:
        ctx.require_admin()
    return project_id


def _target_user(request: web.Request) -> str | None:
    """The `user_id` asked about (None: the project); another user's quotas are an admin's."""
    ctx = context(request)
    user_id = request.query.get("user_id") or None
    if user_id is not None and user_id != ctx.user_id:
        ctx.require_admin()
    return user_id


async def _limits_of(db: Executor, project_id: str, user_id: str | None) -> dict[str, int]:
    if user_id is None:
        return await project_quotas(db, project_id)
    return await quota.user_limits(db, project_id, user_id)


async def show(request: web.Request) -> web.Response:
    project_id = _target_project(request)
    limits = await _limits_of(database(request), project_id, _target_user(request))
    return web.json_response({"quota_set": {"id": project_id, **_quota_keys(request, limits)}})


async def defaults(request: web.Request) -> web.Response:
    """The defaults every project starts from (the default quota class's)."""
    project_id = request.match_info["project_id"]
    limits = await quota.defaults(database(request))
    return web.json_response({"quota_set": {"id": project_id, **_quota_keys(request, limits)}})


async def detail(request: web.Request) -> web.Response:
    project_id = _target_project(request)
    db = database(request)
    asked = _target_user(request)  # another user's usage is an admin's to see
    if asked is None:  # the project's, with the caller's own key pairs (they are per user)
        usage = await quota.usage(db, project_id, context(request).user_id)
    else:
        usage = await quota.user_usage(db, project_id, asked)
    body: dict[str, Any] = {"id": project_id}
    limits = await _limits_of(db, project_id, asked)
    for key, limit in _quota_keys(request, limits).items():
        body[key] = {"limit": limit, "in_use": usage.get(key, 0), "reserved": 0}
    return web.json_response({"quota_set": body})


def limit_value(resource: str, value: Any) -> int:
    """Nova's non_negative_integer_with_minus_one: an integer (or its string) >= -1."""
    text = value.strip() if isinstance(value, str) else ""
    # ASCII digits of a BIGINT at most: int() refuses "²" and 4300+ digits with a ValueError.
    if text.isascii() and text.lstrip("-").isdigit() and len(text) <= 20:
        value = int(text)
    if not isinstance(value, int) or isinstance(value, bool) or not -1 <= value <= MAX_LIMIT:
        raise BadRequest(f"Invalid input for field/attribute {resource}. Value: {value!r}. "
                         f"It must be an integer from -1 to {MAX_LIMIT}.")
    return value


def parse_limits(body: Any, wrapper: str, allowed: Collection[str],
                 takes_force: bool) -> tuple[dict[str, int], bool]:
    """(new limits, force) from a PUT body {wrapper: {resource: limit}} whose resources are
    `allowed` (those of the request's microversion)."""
    if not isinstance(body, dict) or set(body) != {wrapper} or not isinstance(body[wrapper], dict):
        raise BadRequest(f"Invalid input: the body must be {{\"{wrapper}\": {{...}}}}")
    values: dict[str, int] = {}
    force: Any = False
    for key, value in body[wrapper].items():
        if key == "force" and takes_force:
            force = value.lower() in ("true", "1", "yes") if isinstance(value, str) else value
            if not isinstance(force, bool):
                raise BadRequest(f"Invalid input for field/attribute force. Value: {value!r}.")
        elif key not in allowed:
            raise BadRequest(f"Invalid input: additional property {key!r} is not allowed at "
                             "this microversion")
        else:
            values[key] = limit_value(key, value)
    return values, bool(force)


async def update(request: web.Request) -> web.Response:
    context(request).require_admin()
    project_id = request.match_info["project_id"]
    values, force = parse_limits(await read_json(request), "quota_set", _quota_keys(request),
                                 takes_force=True)
    user_id = request.query.get("user_id") or None
    if user_id is not None:
        return await _update_user(request, project_id, user_id, values, force)
    async with database(request).transaction() as tx:
        await quota.lock_project(tx, project_id)
        used = await quota.usage(tx, project_id)
        for resource, limit in values.items():
            if not force and limit != -1 and limit < used.get(resource, 0):
                raise BadRequest(f"Quota limit {limit} for {resource} must be greater than or "
                                 f"equal to already used and reserved {used[resource]}.")
        await quota.set_limits(tx, project_id, values, time.time())
        limits = await quota.limits(tx, project_id)
    return web.json_response({"quota_set": _quota_keys(request, limits)})


async def _update_user(request: web.Request, project_id: str, user_id: str,
                       values: dict[str, int], force: bool) -> web.Response:
    """A user's limits in the project: at most the project's (Nova's maximum) and, unless
    forced, at least what the user uses (its minimum)."""
    if len(user_id) > 255:
        raise BadRequest("Invalid user_id: longer than 255 characters")
    async with database(request).transaction() as tx:
        await quota.lock_project(tx, project_id)
        project = await quota.limits(tx, project_id)
        used = await quota.user_usage(tx, project_id, user_id)
        for resource, limit in values.items():
            maximum = project[resource]
            if maximum != -1 and (limit == -1 or limit > maximum):
                raise BadRequest(f"Quota limit {limit} for {resource} must be less than or "
                                 f"equal to {maximum}.")
            if not force and limit != -1 and limit < used.get(resource, 0):
                raise BadRequest(f"Quota limit {limit} for {resource} must be greater than or "
                                 f"equal to already used and reserved {used[resource]}.")
        await quota.set_user_limits(tx, project_id, user_id, values, time.time())
        limits = await quota.user_limits(tx, project_id, user_id)
    return web.json_response({"quota_set": _quota_keys(request, limits)})


async def reset(request: web.Request) -> web.Response:
    """DELETE: the project goes back to the defaults (with `user_id`: the user to the
    project's limits)."""
    context(request).require_admin()
    project_id = request.match_info["project_id"]
    if user_id := request.query.get("user_id"):
        await quota.reset_user_limits(database(request), project_id, user_id)
    else:
        await quota.reset_limits(database(request), project_id)
    return web.Response(status=202)


async def limits(request: web.Request) -> web.Response:
    ctx = context(request)
    version = request_version(request)
    project_id = str(ctx.project_id)
    if request.query.get("tenant_id") and request.query["tenant_id"] != project_id:
        ctx.require_admin()
        project_id = request.query["tenant_id"]
    usage = await quota.usage(database(request), project_id)
    quotas = await project_quotas(database(request), project_id)
    absolute: dict[str, int] = {
        "maxImageMeta": quotas["metadata_items"], "maxPersonality": quotas["injected_files"],
        "maxPersonalitySize": quotas["injected_file_content_bytes"],
        "maxSecurityGroupRules": quotas["security_group_rules"],
        "maxSecurityGroups": quotas["security_groups"], "maxServerMeta": quotas["metadata_items"],
        "maxTotalCores": quotas["cores"], "maxTotalFloatingIps": quotas["floating_ips"],
        "maxTotalInstances": quotas["instances"], "maxTotalKeypairs": quotas["key_pairs"],
        "maxTotalRAMSize": quotas["ram"], "maxServerGroups": quotas["server_groups"],
        "maxServerGroupMembers": quotas["server_group_members"],
        "totalCoresUsed": usage["cores"], "totalFloatingIpsUsed": 0,
        "totalInstancesUsed": usage["instances"], "totalRAMUsed": usage["ram"],
        "totalSecurityGroupsUsed": 0, "totalServerGroupsUsed": usage["server_groups"],
    }
    removed: list[str] = []
    if version.at_least("2.36"):
        removed += ["maxSecurityGroupRules", "maxSecurityGroups", "maxTotalFloatingIps",
                    "totalFloatingIpsUsed", "totalSecurityGroupsUsed"]
    if version.at_least("2.39"):
        removed.append("maxImageMeta")
    if version.at_least("2.57"):
        removed += ["maxPersonality", "maxPersonalitySize"]
    for key in removed:
        absolute.pop(key)
    return web.json_response({"limits": {"rate": [], "absolute": absolute}})


def add_routes(app: web.Application, prefix: str) -> None:
    app.router.add_get(f"{prefix}/limits", limits)
    app.router.add_get(f"{prefix}/os-quota-sets/{{project_id}}", show)
    app.router.add_put(f"{prefix}/os-quota-sets/{{project_id}}", update)
    app.router.add_delete(f"{prefix}/os-quota-sets/{{project_id}}", reset)
    app.router.add_get(f"{prefix}/os-quota-sets/{{project_id}}/defaults", defaults)
    app.router.add_get(f"{prefix}/os-quota-sets/{{project_id}}/detail", detail)
