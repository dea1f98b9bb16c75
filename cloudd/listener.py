"""One aiohttp application on its own address: the API, agents, S3, EC2, consoles, metadata.

Each service that listens used to repeat the same runner/site/port/stop code; this is it once.
"""

from __future__ import annotations

import logging
import ssl

from aiohttp import web

from cloudd.core import Service

LOG = logging.getLogger(__name__)

# A client must send a complete request head within this long of connecting or of its previous
# response, or its connection is closed: slow or silent clients cannot hold connections forever.
# (aiohttp >= 3.14.5 applies its keep-alive timeout to a request head still arriving; its
# default, an hour, is far too long for a listener open to anyone.)
CLIENT_IDLE_TIMEOUT = 30.0


class Listener:
    def __init__(self, idle_timeout: float = CLIENT_IDLE_TIMEOUT) -> None:
        self.idle_timeout = idle_timeout
        self.runner: web.AppRunner | None = None
        self.port: int | None = None

    async def start(self, app: web.Application, host: str, port: int,
                    ssl_context: ssl.SSLContext | None = None) -> int:
        """Serve `app` on host:port; return the port really bound (port 0 = any free one)."""
        # access_log off: request lines can carry tokens; the API's middleware logs requests.
        runner = web.AppRunner(app, access_log=None, handle_signals=False,
                               keepalive_timeout=self.idle_timeout)
        await runner.setup()
        try:
            await web.TCPSite(runner, host, port, ssl_context=ssl_context,
                              reuse_address=True).start()
        except BaseException:
            await runner.cleanup()
            raise
        self.runner = runner
        self.port = next((int(a[1]) for a in runner.addresses if isinstance(a, tuple)), port)
        return self.port

    async def start_optional(self, service: Service, what: str, app: web.Application, host: str,
                             port: int, ssl_context: ssl.SSLContext | None = None) -> bool:
        """Like a separate Nova daemon failing to start: this part is down, the controller is not.
        The service's health and the log say so."""
        try:
            await self.start(app, host, port, ssl_context)
        except OSError as exc:
            service.error = f"{what} is not served: cannot listen on {host}:{port}: {exc}"
            LOG.error("%s", service.error)
            return False
        return True

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None


async def read_bounded(request: web.Request, limit: int) -> bytes | None:
    """The request's body if it is at most `limit` bytes, else None (read no further: a
    listener open to guests or tenants never buffers more than it takes)."""
    body = bytearray()
    while len(body) <= limit:
        chunk = await request.content.read(limit + 1 - len(body))
        if not chunk:
            return bytes(body)
        body += chunk
    return None
