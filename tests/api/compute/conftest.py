"""A real controller in-process (SQLite in tmp_path), bootstrapped, with an admin token."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from loopback import loopback_config

from cloudd.agent.service import build_agent
from cloudd.api.identity.bootstrap import bootstrap, ensure_project, ensure_role
from cloudd.api.identity.passwords import hash_password
from cloudd.api.image import image_store, import_image
from cloudd.api.service import ApiService
from cloudd.controller import build_controller
from cloudd.db.service import DatabaseService


@dataclass
class Cloud:
    base: str  # http://127.0.0.1:<port>
    session: aiohttp.ClientSession
    admin_token: str
    admin_project: str
    db: Any

    async def call(self, method: str, path: str, token: str | None = None,
                   version: str | None = None, **kwargs: Any) -> tuple[int, Any, Any]:
        headers = dict(kwargs.pop("headers", {}))
        headers["X-Auth-Token"] = token if token is not None else self.admin_token
        if version:
            headers["X-OpenStack-Nova-API-Version"] = version
        async with self.session.request(method, self.base + path, headers=headers,
                                        **kwargs) as resp:
            body = await resp.json() if resp.content_type == "application/json" else None
            return resp.status, body, resp.headers

    async def token(self, user: str, password: str, project: str) -> str:
        body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
            "name": user, "domain": {"id": "default"}, "password": password}}},
            "scope": {"project": {"name": project, "domain": {"id": "default"}}}}}
        async with self.session.post(f"{self.base}/identity/v3/auth/tokens", json=body) as resp:
            assert resp.status == 201, await resp.text()
            return resp.headers["X-Subject-Token"]

    async def user_token(self, project: str, roles: tuple[str, ...]) -> tuple[str, str]:
        """A new user with `roles` on `project` (created if needed): (token, project_id)."""
        project_id = await ensure_project(self.db, project)
        name = f"user-{uuid.uuid4().hex[:8]}"
        user_id = uuid.uuid4().hex
        await self.db.execute(
            "INSERT INTO users (id, name, password_hash, default_project_id, created_at)"
            " VALUES ($1, $2, $3, $4, $5)", user_id, name, hash_password("secret"), project_id,
            time.time())
        for role in roles:
            await self.db.execute(
                "INSERT INTO role_assignments (user_id, project_id, role_id) VALUES ($1, $2, $3)",
                user_id, project_id, await ensure_role(self.db, role))
        return await self.token(name, "secret", project), project_id


# The public, active image every server in these tests boots from (imageRef must name one).
BOOT_IMAGE = "8a3c1d2e-0000-4000-8000-000000000001"


async def add_boot_image(db: Any, cfg: Any, tmp_path: Path) -> None:
    path = tmp_path / "cirros.img"
    await asyncio.to_thread(path.write_bytes, b"\0" * 1024)
    await import_image(db, image_store(cfg), path, "cirros", disk_format="raw", public=True,
                       image_id=BOOT_IMAGE)


@contextlib.asynccontextmanager
async def running_cloud(tmp_path: Path, **sections: dict[str, str]) -> AsyncIterator[Cloud]:
    """The cloud of `cloud`; `sections` override loopback_config's (e.g. another database)."""
    cfg = loopback_config(tmp_path, **sections)
    host = build_controller(cfg)
    build_agent(cfg, host)  # one compute host (fake driver) over the loopback websocket
    await host.start()
    try:
        db = host.get(DatabaseService).db
        creds = await bootstrap(db, tmp_path)
        await add_boot_image(db, cfg, tmp_path)
        base = f"http://127.0.0.1:{host.get(ApiService).port}"
        async with aiohttp.ClientSession() as session:
            cloud = Cloud(base, session, "", creds["project_id"], db)
            cloud.admin_token = await cloud.token("admin", creds["password"], "admin")
            yield cloud
    finally:
        await host.stop()


@pytest.fixture
async def cloud(tmp_path: Path) -> AsyncIterator[Cloud]:
    async with running_cloud(tmp_path) as running:
        yield running
