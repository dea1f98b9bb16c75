"""The cloud under test cut down to the Identity API: a controller slice of the database and the
API only (the real connect + migrate path, bootstrap), served on loopback by an aiohttp test
server, reached as an ApiCloud."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer

from cloudd.api.identity.app import identity_app
from cloudd.api.service import ApiService
from cloudd.config import resolve_paths
from cloudd.config.models import CloudConfig
from cloudd.core import ServiceHost
from cloudd.db.service import DatabaseService
from cloudd.identity.bootstrap import bootstrap
from cloudd.identity.token_cache import TOKEN_CACHE

from .api import ApiCloud


@contextlib.asynccontextmanager
async def identity_cloud(db_url: str, tmp_path: Path) -> AsyncIterator[ApiCloud]:
    """Only the database and the API services (no scheduler, conductor or agent): the API
    serves /identity and an empty /compute, whose catalog entry the tests check."""
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
    api.mount("/compute", lambda _host: web.Application())
    server = TestServer(api.build_app(), host="127.0.0.1")
    await server.start_server()
    base = str(server.make_url("")).rstrip("/")
    config.api.public_url = base
    TOKEN_CACHE.clear()
    try:
        async with aiohttp.ClientSession() as session:
            cloud = ApiCloud(base, session, "", admin, host)
            cloud.admin_token = await cloud.token("admin", admin["password"], "admin")
            yield cloud
    finally:
        await server.close()
        await host.stop()
        await database.stop()
