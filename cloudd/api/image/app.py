"""The Image v2 (Glance-compatible) sub-application mounted at /image."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from cloudd.api.auth import auth_middleware, public_url, request_id_middleware
from cloudd.api.image import data, images, patch, quota
from cloudd.api.image.errors import error_middleware, glance_error_body
from cloudd.core import ServiceHost
from cloudd.web import inputs

MOUNT = "/image"
# Version discovery never needs a token.
UNAUTHENTICATED = (MOUNT, f"{MOUNT}/versions", f"GET {MOUNT}/v2")
# Glance's v2 minor versions up to v2.5 (community visibility); no import, stores or tasks.
CURRENT = "v2.5"
SUPPORTED = ("v2.4", "v2.3", "v2.2", "v2.1", "v2.0")


def versions_body(request: web.Request) -> dict[str, Any]:
    href = f"{public_url(request)}{MOUNT}/v2/"
    return {"versions": [{"id": version, "status": "CURRENT" if version == CURRENT else "SUPPORTED",
                          "links": [{"rel": "self", "href": href}]}
                         for version in (CURRENT, *SUPPORTED)]}


async def versions(request: web.Request) -> web.Response:
    return web.json_response(versions_body(request), status=300)


async def versions_ok(request: web.Request) -> web.Response:
    return web.json_response(versions_body(request))


def _body_limit(request: web.Request) -> int | None:
    """Image data streams to the store under the image size cap; everything else is JSON."""
    if request.method == "PUT" and request.path.endswith("/file"):
        return None
    return inputs.JSON_BODY_LIMIT


def image_app(host: ServiceHost) -> web.Application:
    app = web.Application(middlewares=[
        request_id_middleware(), auth_middleware(UNAUTHENTICATED, error_body=glance_error_body),
        error_middleware, inputs.body_limit_middleware(_body_limit),
    ])
    app.router.add_get("", versions)
    app.router.add_get("/", versions)
    app.router.add_get("/versions", versions_ok)
    app.router.add_get("/v2", versions)
    app.router.add_get("/v2/", versions)
    for module in (images, patch, data, quota):
        module.add_routes(app)
    return app
