"""Who is calling, over HTTP: request ids and X-Auth-Token validation for every API.

Any sub-application (identity, compute, image, network) adds, in this order:

    middlewares=[request_id_middleware(), auth_middleware(unauthenticated_paths=..., error_body=...)]

and then reads `request[CONTEXT_KEY]` (a `RequestContext`) in its handlers. The caller and its
policy checks are the identity domain's (cloudd.identity.policy), as is the token cache.
"""

from __future__ import annotations

import functools
import logging
import uuid
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from aiohttp import web

from cloudd.api.keys import HOST_KEY
from cloudd.db import Database
from cloudd.db.service import DatabaseService
from cloudd.identity.policy import PolicyForbidden, RequestContext
from cloudd.identity.token_cache import validate_token
from cloudd.log import request_id_var

LOG = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
ErrorBody = Callable[[int, str], dict[str, Any]]

UNAUTHORIZED_MESSAGE = "The request you have made requires authentication."
_TITLES = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
           405: "Method Not Allowed", 409: "Conflict", 413: "Request Entity Too Large",
           415: "Unsupported Media Type", 500: "Internal Server Error"}


def keystone_error_body(status: int, message: str) -> dict[str, Any]:
    """Keystone's error format; other APIs pass their own formatter to auth_middleware."""
    return {"error": {"code": status, "title": _TITLES.get(status, "Error"), "message": message}}


REQUEST_ID_KEY = web.RequestKey("cloudd_request_id", str)


CONTEXT_KEY = web.RequestKey("cloudd_context", RequestContext)


def get_context(request: web.Request) -> RequestContext:
    context: RequestContext | None = request.get(CONTEXT_KEY)
    if context is None:
        raise RuntimeError("no RequestContext: is auth_middleware installed on this sub-app?")
    return context


def require_role(role: str) -> Callable[[Handler], Handler]:
    """Handler decorator: the caller needs `role` (admin always passes)."""

    def decorate(handler: Handler) -> Handler:
        @functools.wraps(handler)
        async def checked(request: web.Request) -> web.StreamResponse:
            get_context(request).require_role(role)
            return await handler(request)

        return checked

    return decorate


def request_database(request: web.Request) -> Database:
    return request.config_dict[HOST_KEY].get(DatabaseService).db


def public_url(request: web.Request) -> str:
    return str(request.config_dict[HOST_KEY].config.api.public_url).rstrip("/")


# ----- middlewares ---------------------------------------------------------------------------
def request_id_middleware(header_names: Iterable[str] = ("X-OpenStack-Request-ID",)) -> Any:
    """Give each request a `req-<uuid>`, log it, and return it in `header_names` on every response."""
    names = tuple(header_names)

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        request_id = f"req-{uuid.uuid4()}"
        request[REQUEST_ID_KEY] = request_id
        reset = request_id_var.set(request_id)
        global_id = request.headers.get("X-OpenStack-Request-ID", "")
        if global_id.startswith("req-") and global_id != request_id:
            LOG.debug("global request id %s", global_id[:40])
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            for name in names:
                exc.headers[name] = request_id
            raise
        finally:
            request_id_var.reset(reset)
        for name in names:
            response.headers[name] = request_id
        return response

    return middleware


def _normalize_rule(rule: str) -> str:
    """"POST /a/b/" -> "POST /a/b"; "/a/" -> "/a" (trailing slashes never matter)."""
    method, _, path = rule.rpartition(" ")
    path = path.rstrip("/") or "/"
    return f"{method} {path}" if method else path


def _is_unauthenticated(request: web.Request, rules: frozenset[str]) -> bool:
    path = request.path.rstrip("/") or "/"
    return path in rules or f"{request.method} {path}" in rules


def unauthorized_response(request: web.Request, error_body: ErrorBody) -> web.Response:
    return web.json_response(
        error_body(401, UNAUTHORIZED_MESSAGE), status=401,
        headers={"WWW-Authenticate": f'Keystone uri="{public_url(request)}/identity"'},
    )


def auth_middleware(unauthenticated_paths: Iterable[str] = (),
                    error_body: ErrorBody = keystone_error_body) -> Any:
    """Require a valid X-Auth-Token except on `unauthenticated_paths`.

    Paths are full request paths as clients send them (mount prefix included, trailing slash
    ignored), optionally preceded by a method: "/compute", "POST /identity/v3/auth/tokens".
    `error_body(status, message)` renders the 401 and the 403 of a failed policy check.
    """
    rules = frozenset(_normalize_rule(rule) for rule in unauthenticated_paths)

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        token = request.headers.get("X-Auth-Token", "")
        if token:
            data = await validate_token(request_database(request), token)
            if data is not None:
                request_id = request.get(REQUEST_ID_KEY) or f"req-{uuid.uuid4()}"
                request[CONTEXT_KEY] = RequestContext.from_token(data, request_id)
            elif not _is_unauthenticated(request, rules):
                return unauthorized_response(request, error_body)
        elif not _is_unauthenticated(request, rules):
            return unauthorized_response(request, error_body)
        try:
            return await handler(request)
        except PolicyForbidden as exc:
            return web.json_response(error_body(403, exc.message), status=403)

    return middleware
