"""/v2.0/extensions, /availability_zones and /quotas: what clients probe before they act."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from cloudd.api.network.common import context, list_response, network_api
from cloudd.api.network.errors import NotFound
from cloudd.compute.quota import DEFAULT_QUOTAS

UPDATED = "2013-02-03T10:00:00-00:00"
# (alias, name, description): only what this facade really serves.
EXTENSIONS = [
    ("security-group", "security-group", "The security groups extension."),
    ("external-net", "Neutron external network", "Adds external network attribute."),
    ("quotas", "Quota management support", "Expose functions for quotas management per project"),
    ("availability_zone", "Availability Zone", "The availability zone extension."),
    ("network_availability_zone", "Network Availability Zone",
     "Availability zone support for network."),
    ("provider", "Provider Network", "Expose mapping of virtual networks to physical networks"),
]


def _extension(alias: str, name: str, description: str) -> dict[str, Any]:
    return {"alias": alias, "name": name, "description": description, "updated": UPDATED,
            "links": []}


async def list_extensions(request: web.Request) -> web.Response:
    return list_response(request, "extensions", [_extension(*e) for e in EXTENSIONS])


async def show_extension(request: web.Request) -> web.Response:
    alias = request.match_info["alias"]
    for entry in EXTENSIONS:
        if entry[0] == alias:
            return web.json_response({"extension": _extension(*entry)})
    raise NotFound(f"Extension with alias {alias} does not exist", "ExtensionNotFound")


async def availability_zones(request: web.Request) -> web.Response:
    zones = [{"name": "nova", "resource": resource, "state": "available"}
             for resource in ("network", "router")]
    return list_response(request, "availability_zones", zones)


def _limits(request: web.Request) -> dict[str, int]:
    floating = network_api(request).floating_ip_quota
    return {"floatingip": floating, "network": -1, "subnet": -1, "port": -1, "router": 0,
            "rbac_policy": -1, "security_group": DEFAULT_QUOTAS["security_groups"],
            "security_group_rule": DEFAULT_QUOTAS["security_group_rules"]}


async def _usage(request: web.Request, project_id: str) -> dict[str, int]:
    usage = await network_api(request).usage(project_id)
    return {
        "floatingip": usage.counts.floating_ips, "network": usage.counts.networks,
        "port": usage.counts.ports, "security_group": usage.security_groups,
        "security_group_rule": usage.security_group_rules,
    }


def _project(request: web.Request) -> str:
    project_id = request.match_info["project_id"]
    context(request).require_read(project_id)
    return project_id


async def show_quota(request: web.Request) -> web.Response:
    _project(request)
    return web.json_response({"quota": _limits(request)})


async def show_quota_details(request: web.Request) -> web.Response:
    used = await _usage(request, _project(request))
    return web.json_response({"quota": {
        key: {"limit": limit, "used": used.get(key, 0), "reserved": 0}
        for key, limit in _limits(request).items()}})


def add_routes(app: web.Application, prefix: str) -> None:
    app.router.add_get(f"{prefix}/extensions", list_extensions)
    app.router.add_get(f"{prefix}/extensions/{{alias}}", show_extension)
    app.router.add_get(f"{prefix}/availability_zones", availability_zones)
    app.router.add_get(f"{prefix}/quotas/{{project_id}}", show_quota)
    app.router.add_get(f"{prefix}/quotas/{{project_id}}/default", show_quota)
    app.router.add_get(f"{prefix}/quotas/{{project_id}}/details", show_quota_details)
