"""The Keystone v3 compatible identity API, mounted at /identity."""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web

from cloudd.api.auth import auth_middleware, public_url, request_id_middleware
from cloudd.api.identity import auth_tokens, ec2, projects, roles, users
from cloudd.api.identity.auth_tokens import THROTTLE_KEY
from cloudd.api.identity.errors import error_middleware
from cloudd.core import ServiceHost
from cloudd.db.service import DatabaseService
from cloudd.identity.lockout import LoginThrottle
from cloudd.identity.tokens import purge_expired
from cloudd.web import inputs
from cloudd.web.guards import PerClientLimit, per_client_middleware

LOG = logging.getLogger(__name__)
PREFIX = "/identity"
PURGE_INTERVAL = 600.0

# Discovery and asking for a token are the only calls made without a token.
UNAUTHENTICATED = (PREFIX, f"{PREFIX}/v3", f"POST {PREFIX}/v3/auth/tokens")


def version_document(request: web.Request) -> dict[str, Any]:
    return {
        "id": "v3.14", "status": "stable", "updated": "2020-04-07T00:00:00Z",
        "links": [{"rel": "self", "href": f"{public_url(request)}{PREFIX}/v3/"}],
        "media-types": [{"base": "application/json",
                         "type": "application/vnd.openstack.identity-v3+json"}],
    }


async def versions(request: web.Request) -> web.Response:
    return web.json_response({"versions": {"values": [version_document(request)]}}, status=300)


async def version(request: web.Request) -> web.Response:
    return web.json_response({"version": version_document(request)})


def _body_limit(request: web.Request) -> int:
    """Asking for a token is open to anyone: its body is the smallest of all."""
    if request.path.endswith("/auth/tokens"):
        return inputs.AUTH_BODY_LIMIT
    return inputs.JSON_BODY_LIMIT


def identity_app(host: ServiceHost) -> web.Application:
    app = web.Application(middlewares=[
        request_id_middleware(), error_middleware,
        per_client_middleware(PerClientLimit(), (("POST", "/auth/tokens"),)),
        inputs.body_limit_middleware(_body_limit), auth_middleware(UNAUTHENTICATED),
    ])
    app[THROTTLE_KEY] = LoginThrottle()
    app.router.add_get("", versions)
    app.router.add_get("/", versions)
    app.router.add_get("/v3", version)
    app.router.add_get("/v3/", version)
    for module in (auth_tokens, projects, users, roles, ec2):
        module.add_routes(app)

    async def start_purge(_: web.Application) -> None:
        async def purge() -> None:
            purged = await purge_expired(host.get(DatabaseService).db)
            if purged:
                LOG.info("purged %d expired tokens", purged)

        # Supervised by the host like every other periodic job of the controller.
        host.periodic(PURGE_INTERVAL, purge, "identity-token-purge")

    app.on_startup.append(start_purge)
    return app

