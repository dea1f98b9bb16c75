"""The Network API v2.0 sub-application mounted at /network (no microversions)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from cloudd.api.auth import auth_middleware, public_url, request_id_middleware
from cloudd.api.network import floatingips, misc, networks, security_groups
from cloudd.api.network.errors import error_middleware, neutron_error_body
from cloudd.core import ServiceHost
from cloudd.web import inputs

MOUNT = "/network"
PREFIX = "/v2.0"
UNAUTHENTICATED = (MOUNT, f"GET {MOUNT}/v2.0")


def _version(request: web.Request) -> dict[str, Any]:
    href = f"{public_url(request)}{MOUNT}/v2.0/"
    return {"id": "v2.0", "status": "CURRENT", "links": [{"rel": "self", "href": href}]}


async def versions(request: web.Request) -> web.Response:
    return web.json_response({"versions": [_version(request)]})


async def resources(request: web.Request) -> web.Response:
    """GET /v2.0: the collections this API serves."""
    base = f"{public_url(request)}{MOUNT}/v2.0"
    names = [("network", "networks"), ("subnet", "subnets"), ("port", "ports"),
             ("floatingip", "floatingips"), ("security_group", "security-groups"),
             ("security_group_rule", "security-group-rules")]
    return web.json_response({"resources": [
        {"name": name, "collection": collection,
         "links": [{"rel": "self", "href": f"{base}/{collection}"}]}
        for name, collection in names]})


def _error_body(status: int, message: str) -> dict[str, Any]:
    return neutron_error_body(status, message)


def network_app(host: ServiceHost) -> web.Application:
    app = web.Application(middlewares=[
        request_id_middleware(), auth_middleware(UNAUTHENTICATED, error_body=_error_body),
        error_middleware, inputs.body_limit_middleware(lambda _request: inputs.JSON_BODY_LIMIT),
    ])
    app.router.add_get("", versions)
    app.router.add_get("/", versions)
    app.router.add_get(PREFIX, resources)
    app.router.add_get(PREFIX + "/", resources)
    for module in (networks, floatingips, security_groups, misc):
        module.add_routes(app, PREFIX)
    return app
