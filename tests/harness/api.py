"""The cloud under test over HTTP: a real controller in-process (SQLite in tmp_path by default)
with one compute host (fake driver) on the loopback websocket, bootstrapped, a public boot image,
and an admin token."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from cloudd.agent.service import build_agent
from cloudd.api.service import ApiService
from cloudd.compute import flavors
from cloudd.config import CloudConfig
from cloudd.controller import build_controller
from cloudd.core import ServiceHost
from cloudd.db import Database
from cloudd.db.service import DatabaseService
from cloudd.identity.bootstrap import bootstrap
from cloudd.image.data import import_image
from cloudd.image.records import image_store

from .config import loopback_config
from .users import add_user, issue_token

# The public, active image every server in these tests boots from (imageRef must name one).
BOOT_IMAGE = "8a3c1d2e-0000-4000-8000-000000000001"


async def add_boot_image(db: Any, cfg: Any, tmp_path: Path) -> None:
    path = tmp_path / "cirros.img"
    await asyncio.to_thread(path.write_bytes, b"\0" * 1024)
    await import_image(db, image_store(cfg), path, "cirros", disk_format="raw", public=True,
                       image_id=BOOT_IMAGE)


@dataclass
class Started:
    """A started, bootstrapped controller: what each API's cloud class is made from."""

    host: ServiceHost
    cfg: CloudConfig
    creds: dict[str, Any]  # bootstrap()'s: user_id, project_id, password
    session: aiohttp.ClientSession
    admin_token: str

    @property
    def db(self) -> Database:
        return self.host.get(DatabaseService).db

    @property
    def base(self) -> str:
        """The API: http://127.0.0.1:<port>."""
        return f"http://127.0.0.1:{self.host.get(ApiService).port}"


Prepare = Callable[[Database, CloudConfig, dict[str, Any]], Awaitable[None]]


@contextlib.asynccontextmanager
async def started(tmp_path: Path, *, agent: bool = True, boot_image: bool = True,
                  prepare: Prepare | None = None, cfg: CloudConfig | None = None,
                  **sections: dict[str, str]) -> AsyncIterator[Started]:
    """Controller (+ agent unless not `agent`) of `cfg` (default: loopback_config with
    `sections`), bootstrapped into tmp_path, the boot image added unless not `boot_image`,
    `prepare(db, cfg, creds)` run (networks...), an HTTP session and the admin's token."""
    cfg = cfg or loopback_config(tmp_path, **sections)
    host = build_controller(cfg)
    if agent:
        build_agent(cfg, host)  # one compute host (fake driver) over the loopback websocket
    await host.start()
    try:
        db = host.get(DatabaseService).db
        creds = await bootstrap(db, tmp_path)
        await flavors.ensure_defaults(db)
        if boot_image:
            await add_boot_image(db, cfg, tmp_path)
        if prepare is not None:
            await prepare(db, cfg, creds)
        base = f"http://127.0.0.1:{host.get(ApiService).port}"
        async with aiohttp.ClientSession() as session:
            token = await issue_token(session, base, "admin", creds["password"], "admin")
            yield Started(host, cfg, creds, session, token)
    finally:
        await host.stop()


@dataclass
class ApiCloud:
    base: str  # http://127.0.0.1:<port>
    session: aiohttp.ClientSession
    admin_token: str
    admin_project: str
    db: Any
    host: ServiceHost | None = None

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
        return await issue_token(self.session, self.base, user, password, project)

    async def user_token(self, project: str, roles: tuple[str, ...]) -> tuple[str, str]:
        """A new user with `roles` on `project` (created if needed): (token, project_id)."""
        name, project_id = await add_user(self.db, project, roles)
        return await self.token(name, "secret", project), project_id


async def wait_status(cloud: ApiCloud, server_id: str, status: str, limit: float = 20) -> dict[str, Any]:
    deadline = time.monotonic() + limit
    body: Any = None
    while time.monotonic() < deadline:
        code, body, _ = await cloud.call("GET", f"/compute/v2.1/servers/{server_id}")
        if code == 404 and status == "DELETED":
            return {}
        if code == 200 and body["server"]["status"] == status:
            return dict(body["server"])
        await asyncio.sleep(0.1)
    raise AssertionError(f"{server_id} never reached {status}: {body}")


async def action(cloud: ApiCloud, server_id: str, body: dict[str, Any], expect: int = 202) -> Any:
    code, resp, headers = await cloud.call("POST", f"/compute/v2.1/servers/{server_id}/action",
                                           json=body)
    assert code == expect, (body, code, resp)
    return resp, headers


@contextlib.asynccontextmanager
async def running_cloud(tmp_path: Path, *, boot_image: bool = True, prepare: Prepare | None = None,
                        **sections: dict[str, str]) -> AsyncIterator[ApiCloud]:
    """The cloud of `cloud`; `sections` override loopback_config's (e.g. another database)."""
    cfg = loopback_config(tmp_path, **sections)
    async with started(tmp_path, boot_image=boot_image, prepare=prepare, cfg=cfg) as up:
        yield ApiCloud(up.base, up.session, up.admin_token, up.creds["project_id"], up.db, up.host)


@pytest.fixture
async def cloud(tmp_path: Path) -> AsyncIterator[ApiCloud]:
    async with running_cloud(tmp_path) as running:
        yield running


def patch_headers() -> dict[str, Any]:
    """The Image API's JSON-patch content type."""
    return {"Content-Type": "application/openstack-images-v2.1-json-patch"}
