"""The Compute API v2.1 sub-application: version documents, middlewares, every route."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from cloudd.api.auth import auth_middleware
from cloudd.api.compute import (
    consoles,
    flavor_access,
    flavors,
    hypervisors,
    keypairs,
    misc,
    network_proxies,
    quota_classes,
    quotas,
    server_actions,
    server_diagnostics,
    server_extras,
    server_groups,
    server_migrations,
    server_password,
    server_tags,
    servers,
    usage,
    views,
)
from cloudd.api.compute.errors import nova_error_body
from cloudd.api.compute.microversion import MIN_VERSION, compute_front_middleware, max_version
from cloudd.api.keys import HOST_KEY
from cloudd.core import ServiceHost
from cloudd.web import inputs

MOUNT = "/compute"
PREFIX = "/v2.1"
# Version discovery never needs a token.
UNAUTHENTICATED = (MOUNT, f"{MOUNT}/v2.1", f"{MOUNT}/v2")


def _version_entry(request: web.Request, version_id: str) -> dict[str, Any]:
    base = views.base_url(request)
    if version_id == "v2.0":
        return {"id": "v2.0", "status": "SUPPORTED", "version": "", "min_version": "",
                "updated": "2011-01-21T11:33:21Z", "links": [{"rel": "self", "href": f"{base}/v2/"}]}
    return {"id": "v2.1", "status": "CURRENT",
            "version": str(max_version(request.config_dict[HOST_KEY].config)),
            "min_version": MIN_VERSION, "updated": "2013-07-23T11:33:21Z",
            "links": [{"rel": "self", "href": f"{base}/v2.1/"}]}


async def versions(request: web.Request) -> web.Response:
    return web.json_response({"versions": [_version_entry(request, "v2.0"),
                                           _version_entry(request, "v2.1")]})


def _version_document(request: web.Request, version_id: str) -> web.Response:
    entry = _version_entry(request, version_id)
    entry["links"].append({"rel": "describedby", "type": "text/html",
                           "href": "http://docs.openstack.org/"})
    suffix = version_id[1:]
    entry["media-types"] = [{"base": "application/json",
                             "type": f"application/vnd.openstack.compute+json;version={suffix}"}]
    return web.json_response({"version": entry})


async def version_v21(request: web.Request) -> web.Response:
    return _version_document(request, "v2.1")


async def version_v2(request: web.Request) -> web.Response:
    return _version_document(request, "v2.0")


def compute_app(host: ServiceHost) -> web.Application:
    app = web.Application(middlewares=[
        compute_front_middleware, auth_middleware(UNAUTHENTICATED, error_body=nova_error_body),
        inputs.body_limit_middleware(lambda _request: inputs.JSON_BODY_LIMIT),
    ])
    app.router.add_get("", versions)
    app.router.add_get("/", versions)
    app.router.add_get("/v2.1", version_v21)
    app.router.add_get("/v2.1/", version_v21)
    app.router.add_get("/v2", version_v2)
    app.router.add_get("/v2/", version_v2)
    for module in (servers, server_actions, server_extras, flavors, keypairs, quotas, misc,
                   server_groups, server_tags, usage, flavor_access, consoles, network_proxies,
                   server_diagnostics, hypervisors, quota_classes, server_password,
                   server_migrations):
        module.add_routes(app, PREFIX)
    return app
