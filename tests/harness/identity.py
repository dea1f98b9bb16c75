"""A controller slice serving only the Identity API: migrated database, bootstrap, API on
loopback (an aiohttp test server)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import ClientResponse, web
from aiohttp.test_utils import TestClient, TestServer

from cloudd.api.identity.app import identity_app
from cloudd.api.service import ApiService
from cloudd.config import resolve_paths
from cloudd.config.models import CloudConfig
from cloudd.core import ServiceHost
from cloudd.db import Database
from cloudd.db.service import DatabaseService
from cloudd.identity.bootstrap import bootstrap
from cloudd.identity.token_cache import TOKEN_CACHE

from .users import password_auth


@dataclass
class IdentityCloud:
    host: ServiceHost
    db: Database
    client: TestClient[Any, Any]
    admin: dict[str, Any]   # bootstrap() credentials
    base_url: str           # the server's http://127.0.0.1:PORT

    async def token(self, user: str, password: str, project: str | None = None,
                    **scope: Any) -> tuple[str, dict[str, Any]]:
        """Issue a password token by name; returns (token, token body)."""
        resp = await self.client.post("/identity/v3/auth/tokens",
                                      json=password_auth(user, password, project, **scope))
        assert resp.status == 201, await resp.text()
        return resp.headers["X-Subject-Token"], (await resp.json())["token"]

    async def admin_token(self) -> str:
        token, _ = await self.token("admin", self.admin["password"], "admin")
        return token

    async def call(self, method: str, path: str, token: str | None,
                   json: Any = None) -> ClientResponse:
        headers = {"X-Auth-Token": token} if token else {}
        return await self.client.request(method, "/identity" + path, json=json, headers=headers)


@contextlib.asynccontextmanager
async def identity_cloud(db_url: str, tmp_path: Path) -> AsyncIterator[IdentityCloud]:
    config = CloudConfig()
    config.default.state_dir = str(tmp_path)
    config.database.connection = db_url
    config = resolve_paths(config)
    host = ServiceHost(config)
    database = DatabaseService(host)
    host.add(database)
    api = ApiService(host)
    host.add(api)
    await database.start()  # the real connect + migrate path of the controller
    admin = await bootstrap(database.db, tmp_path)
    api.mount("/identity", identity_app)
    # An empty compute API: the catalog lists only what is mounted, and tests check compute's entry.
    api.mount("/compute", lambda _host: web.Application())
    server = TestServer(api.build_app(), host="127.0.0.1")
    client: TestClient[Any, Any] = TestClient(server)
    await client.start_server()
    base_url = str(server.make_url("")).rstrip("/")
    config.api.public_url = base_url
    TOKEN_CACHE.clear()
    try:
        yield IdentityCloud(host, database.db, client, admin, base_url)
    finally:
        await client.close()
        await host.stop()
        await database.stop()
