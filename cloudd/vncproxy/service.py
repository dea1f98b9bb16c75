"""VncProxyService (nova-novncproxy): noVNC's pages and the token-checked websocket relay.

Listens on ``[vnc] novncproxy_host:novncproxy_port``. Serves ``/vnc_lite.html``, ``/vnc.html``
and their scripts from ``[vnc] web`` (Debian's ``novnc`` package), and the websocket on ``/`` and
``/websockify`` (binary subprotocol). The token comes from the query (``?token=``), from a
``path`` query holding ``?token=...``, or from the ``token`` cookie, as current Nova accepts.

A refused connection says why. Browsers (they send ``Origin``) get the upgrade and then a close
with code 4001 and the reason, which noVNC shows; other clients get an HTTP 403 with the reason
before any upgrade. A bad ``Origin`` is a 403 before the upgrade (Nova's cross-site check).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from aiohttp import hdrs, web

from cloudd.consoleauth.service import ConsoleAuthService
from cloudd.consoleauth.tokens import ConsoleConnection, TokenRefused
from cloudd.core import Service, ServiceHost
from cloudd.listener import Listener
from cloudd.vncproxy.relay import relay

LOG = logging.getLogger(__name__)
REFUSED = 4001  # application close code: the token opens nothing
UNREACHABLE = 4002  # the guest's VNC server cannot be reached
CONNECT_TIMEOUT = 5.0


def token_from(request: web.Request) -> str:
    query = request.query
    if query.get("token"):
        return query["token"]
    path = query.get("path", "")
    if "token=" in path:  # ?path=%3Ftoken%3D... sent to the websocket as it is
        values = parse_qs(urlsplit(path).query or path.lstrip("?")).get("token")
        if values:
            return values[0]
    return request.cookies.get("token", "")


def origin_allowed(request: web.Request, allowed: set[str]) -> bool:
    """Nova's check: no Origin (not a browser) passes; otherwise its host must be the proxy's
    own host or an allowed one, and its scheme must match the proxy's (plain HTTP here)."""
    origin = request.headers.get(hdrs.ORIGIN)
    if not origin:
        return True
    parts = urlsplit(origin)
    expected_scheme = request.headers.get("X-Forwarded-Proto", request.scheme)
    own_host = urlsplit(f"//{request.host}").hostname
    return parts.scheme == expected_scheme and (parts.hostname in allowed or
                                                parts.hostname == own_host)


class VncProxyService(Service):
    name = "vncproxy"
    depends = ("database", "consoleauth")

    def __init__(self, host: ServiceHost) -> None:
        super().__init__(host)
        self.listener = Listener()
        self.port: int | None = None
        cfg = host.config.vnc
        self.allowed_origins = {o.strip().lower() for o in cfg.allowed_origins.split(",") if o.strip()}

    def build_app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/", self._websocket)
        app.router.add_get("/websockify", self._websocket)
        web_dir = Path(self.host.config.vnc.web)
        for page in ("vnc_lite.html", "vnc.html", "vnc_auto.html"):
            app.router.add_get(f"/{page}", self._page_handler(web_dir / page))
        for folder in ("app", "core", "vendor"):
            if (web_dir / folder).is_dir():
                app.router.add_static(f"/{folder}", web_dir / folder, follow_symlinks=True)
        return app

    def _page_handler(self, path: Path) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def page(request: web.Request) -> web.StreamResponse:
            if not await asyncio.to_thread(path.exists):
                raise web.HTTPNotFound(text=f"{path} is missing: install Debian's novnc package "
                                            "(scripts/install-console.sh)")
            return web.FileResponse(path)

        return page

    async def start(self) -> None:
        cfg = self.host.config.vnc
        # access_log off: request lines carry console tokens, which are never logged.
        if not cfg.enabled:
            return
        # Like a separate nova-novncproxy failing: consoles are down, the cloud is not.
        if not await self.listener.start_optional(self, "the VNC console proxy", self.build_app(),
                                                  cfg.novncproxy_host, cfg.novncproxy_port):
            return
        self.port = self.listener.port
        if cfg.novncproxy_port == 0:  # tests: console URLs must name the port really bound
            cfg.novncproxy_base_url = cfg.novncproxy_base_url.replace(":0/", f":{self.port}/")
        LOG.info("VNC console proxy on %s:%s; console URLs look like %s?path=%%3Ftoken%%3D...",
                 cfg.novncproxy_host, self.port, cfg.novncproxy_base_url)

    async def stop(self) -> None:
        await self.listener.stop()

    async def _websocket(self, request: web.Request) -> web.StreamResponse:
        if request.headers.get(hdrs.UPGRADE, "").lower() != "websocket":
            raise web.HTTPFound("/vnc_lite.html")  # a person typed the proxy's address
        if not origin_allowed(request, self.allowed_origins):
            LOG.warning("refused a console connection from %s: origin %s not allowed",
                        request.remote, request.headers.get(hdrs.ORIGIN))
            raise web.HTTPForbidden(text="console connections from this origin are not allowed")
        browser = hdrs.ORIGIN in request.headers
        try:
            target = await self.host.get(ConsoleAuthService).check_token(token_from(request))
        except TokenRefused as exc:
            LOG.info("refused a console connection from %s: %s", request.remote, exc)
            if not browser:
                raise web.HTTPForbidden(text=str(exc)) from None
            return await self._refuse(request, REFUSED, str(exc))
        return await self._serve(request, target)

    async def _refuse(self, request: web.Request, code: int, reason: str) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(protocols=("binary",))
        await ws.prepare(request)
        await ws.close(code=code, message=reason.encode()[:120])
        return ws

    async def _serve(self, request: web.Request, target: ConsoleConnection) -> web.StreamResponse:
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(target.host, target.port), CONNECT_TIMEOUT)
        except (OSError, TimeoutError) as exc:
            LOG.warning("console of %s: cannot reach VNC at %s:%s: %s", target.instance_uuid,
                        target.host, target.port, exc)
            if hdrs.ORIGIN not in request.headers:
                raise web.HTTPBadGateway(text="the server's console cannot be reached") from None
            return await self._refuse(request, UNREACHABLE, "the server's console cannot be reached")
        ws = web.WebSocketResponse(protocols=("binary",), max_msg_size=4 * 1024 * 1024)
        await ws.prepare(request)
        LOG.info("console session for %s from %s", target.instance_uuid, request.remote)
        ended_by = await relay(ws, reader, writer)
        LOG.info("console session for %s ended by the %s", target.instance_uuid, ended_by)
        return ws
