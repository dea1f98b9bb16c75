"""ConsoleAuthService (nova-consoleauth): makes console URLs and checks their tokens."""

from __future__ import annotations

import logging
from urllib.parse import quote

from cloudd.compute.instances import Instance
from cloudd.consoleauth import tokens
from cloudd.core import Service, ServiceHost
from cloudd.db import Database
from cloudd.db.service import DatabaseService

LOG = logging.getLogger(__name__)
PURGE_INTERVAL = 300.0


def console_url(base_url: str, token: str) -> str:
    """Current Nova's form: noVNC >= 1.1 reads the websocket path (not a top-level token)
    from `path`, so the token travels inside it: ``vnc_lite.html?path=%3Ftoken%3D<token>``."""
    separator = "&" if "?" in base_url else "?"
    return f"{base_url}{separator}path={quote('?token=' + token, safe='')}"


class ConsoleAuthService(Service):
    name = "consoleauth"
    depends = ("database",)

    def __init__(self, host: ServiceHost) -> None:
        super().__init__(host)

    @property
    def db(self) -> Database:
        return self.host.get(DatabaseService).db

    async def start(self) -> None:
        self.host.periodic(PURGE_INTERVAL, self._purge, "purge console tokens", self)

    async def _purge(self) -> None:
        count = await tokens.purge_expired(self.db)
        if count:
            LOG.info("purged %d expired console tokens", count)

    async def authorize_console(self, instance: Instance, console_type: str, host: str,
                                port: int) -> str:
        """A console URL for `instance` whose VNC server listens on host:port."""
        ttl = self.host.config.consoleauth.token_ttl
        token = await tokens.authorize_console(self.db, instance, console_type, host, port, ttl)
        LOG.info("console token made for instance %s (%s, expires in %ds)", instance.uuid,
                 console_type, ttl)
        return console_url(self.host.config.vnc.novncproxy_base_url, token)

    async def check_token(self, token: str) -> tokens.ConsoleConnection:
        return await tokens.check_token(self.db, token)

    async def delete_tokens_for_instance(self, instance_uuid: str) -> int:
        return await tokens.delete_tokens_for_instance(self.db, instance_uuid)
