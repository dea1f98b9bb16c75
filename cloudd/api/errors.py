"""The shape every API's error middleware shares: its own exception type and the router's own
404/405, both rendered in that API's error body (Glance, Neutron, ...)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def error_middleware_for(
    error_type: type[Exception],
    render: Callable[[int, str, Exception | None], dict[str, Any]],
) -> Any:
    """A middleware turning `error_type` (with `.status` and `.message`) into `render(...)`."""

    @web.middleware
    async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except error_type as exc:
            status = int(getattr(exc, "status", 500))
            body = render(status, str(getattr(exc, "message", exc)), exc)
            return web.json_response(body, status=status)
        except (web.HTTPNotFound, web.HTTPMethodNotAllowed) as exc:  # from the router
            allow = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else {}
            return web.json_response(render(exc.status, exc.reason, None), status=exc.status,
                                     headers=allow)

    return error_middleware
