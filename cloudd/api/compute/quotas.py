"""Nova's default quotas with per-project overrides (table `quotas`), /os-quota-sets and /limits."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from cloudd.api.compute.common import context, database
from cloudd.api.compute.microversion import request_version
from cloudd.db import Executor

DEFAULT_QUOTAS: dict[str, int] = {
    "instances": 10, "cores": 20, "ram": 51200, "floating_ips": 10, "fixed_ips": -1,
    "metadata_items": 128, "key_pairs": 100, "security_groups": 10, "security_group_rules": 20,
    "injected_files": 5, "injected_file_content_bytes": 10240, "injected_file_path_bytes": 255,
    "server_groups": 10, "server_group_members": 10,
}
_NETWORK_KEYS = ("floating_ips", "fixed_ips", "security_groups", "security_group_rules")
_INJECTED_KEYS = ("injected_files", "injected_file_content_bytes", "injected_file_path_bytes")


async def project_usage(db: Executor, project_id: str) -> dict[str, int]:
    row = await db.fetchrow(
        "SELECT COUNT(*) AS n, COALESCE(SUM(vcpus), 0) AS cores, COALESCE(SUM(memory_mb), 0) AS ram"
        " FROM instances WHERE project_id = $1 AND deleted = 0", project_id)
    assert row is not None
    return {"instances": int(row["n"]), "cores": int(row["cores"]), "ram": int(row["ram"])}


async def project_quotas(db: Executor, project_id: str) -> dict[str, int]:
    """The defaults with the project's overrides (`cloudd manage quota set`) applied."""
    quotas = dict(DEFAULT_QUOTAS)
    for row in await db.fetch("SELECT resource, hard_limit FROM quotas WHERE project_id = $1",
                              project_id):
        if row["resource"] in quotas:
            quotas[row["resource"]] = int(row["hard_limit"])
    return quotas


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


async def show(request: web.Request) -> web.Response:
    project_id = _target_project(request)
    limits = await project_quotas(database(request), project_id)
    return web.json_response({"quota_set": {"id": project_id, **_quota_keys(request, limits)}})


async def defaults(request: web.Request) -> web.Response:
    project_id = request.match_info["project_id"]
    return web.json_response({"quota_set": {"id": project_id, **_quota_keys(request)}})


async def detail(request: web.Request) -> web.Response:
    project_id = _target_project(request)
    usage = await project_usage(database(request), project_id)
    key_pairs = await database(request).fetchval(
        "SELECT COUNT(*) FROM key_pairs WHERE user_id = $1", context(request).user_id)
    usage["key_pairs"] = int(key_pairs or 0)
    body: dict[str, Any] = {"id": project_id}
    limits = await project_quotas(database(request), project_id)
    for key, limit in _quota_keys(request, limits).items():
        body[key] = {"limit": limit, "in_use": usage.get(key, 0), "reserved": 0}
    return web.json_response({"quota_set": body})


async def limits(request: web.Request) -> web.Response:
    ctx = context(request)
    version = request_version(request)
    usage = await project_usage(database(request), str(ctx.project_id))
    quotas = await project_quotas(database(request), str(ctx.project_id))
    absolute: dict[str, int] = {
        "maxImageMeta": 128, "maxPersonality": 5, "maxPersonalitySize": 10240,
        "maxSecurityGroupRules": 20, "maxSecurityGroups": 10, "maxServerMeta": 128,
        "maxTotalCores": quotas["cores"], "maxTotalFloatingIps": 10,
        "maxTotalInstances": quotas["instances"], "maxTotalKeypairs": 100,
        "maxTotalRAMSize": quotas["ram"], "maxServerGroups": 10,
        "maxServerGroupMembers": 10, "totalCoresUsed": usage["cores"], "totalFloatingIpsUsed": 0,
        "totalInstancesUsed": usage["instances"], "totalRAMUsed": usage["ram"],
        "totalSecurityGroupsUsed": 0, "totalServerGroupsUsed": 0,
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
    app.router.add_get(f"{prefix}/os-quota-sets/{{project_id}}/defaults", defaults)
    app.router.add_get(f"{prefix}/os-quota-sets/{{project_id}}/detail", detail)
