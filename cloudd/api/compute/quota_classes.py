"""/os-quota-class-sets/{class} (admin): show and update a quota class, as Nova's.

The class "default" is every project's defaults (the built-in ones it does not set); other
class names are kept and shown but change nothing, as in Nova. The keys follow Nova's
microversions: server-group keys appear at 2.50, when the network keys go; the injected-file
keys go at 2.57. An update may name server-group keys at any version (Nova's schema takes
them) even though the view below 2.50 leaves them out.
"""

from __future__ import annotations

import time

from aiohttp import web

from cloudd.api.compute.common import context, database
from cloudd.api.compute.errors import BadRequest, read_json
from cloudd.api.compute.microversion import request_version
from cloudd.api.compute.quotas import parse_limits
from cloudd.compute import quota

_NETWORK_KEYS = ("floating_ips", "fixed_ips", "security_groups", "security_group_rules")
_INJECTED_KEYS = ("injected_files", "injected_file_content_bytes", "injected_file_path_bytes")
_GROUP_KEYS = ("server_groups", "server_group_members")


def _gone_at(request: web.Request) -> set[str]:
    """Resources the request's microversion no longer takes or shows."""
    version = request_version(request)
    gone = set(_NETWORK_KEYS) if version.at_least("2.50") else set()
    return gone | (set(_INJECTED_KEYS) if version.at_least("2.57") else set())


def _view(request: web.Request, limits: dict[str, int]) -> dict[str, int]:
    hidden = _gone_at(request) | (set() if request_version(request).at_least("2.50")
                                  else set(_GROUP_KEYS))
    return {key: limit for key, limit in limits.items() if key not in hidden}


def _class_name(request: web.Request) -> str:
    context(request).require_admin()
    name = request.match_info["id"]
    if len(name) > 255:
        raise BadRequest("Invalid input: a quota class name is at most 255 characters.")
    return name


async def show(request: web.Request) -> web.Response:
    name = _class_name(request)
    limits = await quota.class_limits(database(request), name)
    return web.json_response({"quota_class_set": {"id": name, **_view(request, limits)}})


async def update(request: web.Request) -> web.Response:
    name = _class_name(request)
    allowed = set(quota.DEFAULT_QUOTAS) - _gone_at(request)
    values, _ = parse_limits(await read_json(request), "quota_class_set", allowed,
                             takes_force=False)
    async with database(request).transaction() as tx:
        await quota.set_class_limits(tx, name, values, time.time())
        limits = await quota.class_limits(tx, name)
    return web.json_response({"quota_class_set": _view(request, limits)})


def add_routes(app: web.Application, prefix: str) -> None:
    app.router.add_get(f"{prefix}/os-quota-class-sets/{{id}}", show)
    app.router.add_put(f"{prefix}/os-quota-class-sets/{{id}}", update)
