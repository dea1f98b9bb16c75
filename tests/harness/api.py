"""The cloud under test over HTTP: ApiCloud, the one type every HTTP surface's tests drive, and
running_cloud, the whole controller in-process (SQLite in tmp_path unless [database] says
otherwise; the `cloud` fixture: each backend) with one compute host (fake driver) on the
loopback websocket, bootstrapped, a public boot image, and an admin token."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
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
from .users import DEFAULT_DOMAIN_ID, add_user, password_auth

# The public, active image every server in these tests boots from (imageRef must name one).
BOOT_IMAGE = "8a3c1d2e-0000-4000-8000-000000000001"


async def add_boot_image(db: Database, cfg: CloudConfig, tmp_path: Path) -> None:
    path = tmp_path / "cirros.img"
    await asyncio.to_thread(path.write_bytes, b"\0" * 1024)
    await import_image(db, image_store(cfg), path, "cirros", disk_format="raw", public=True,
                       image_id=BOOT_IMAGE)


@dataclass
class ApiCloud:
    """The cloud under test as an HTTP client sees it: every surface (Compute, Identity, EC2,
    S3, consoles, a libvirt host) is this, made by its own start-up and, where a surface needs
    more (a proxy URL, EC2 keys), extended by a subclass that adds only that."""

    base: str  # the API: http://127.0.0.1:<port>
    session: aiohttp.ClientSession
    admin_token: str  # the bootstrap admin's, scoped to the admin project
    admin: dict[str, Any]  # bootstrap()'s credentials: user_id, project_id, password
    host: ServiceHost  # the controller (in this process)
    # The Compute microversion a call sends when it names none (None: the API's minimum).
    microversion: str | None = None

    @property
    def db(self) -> Database:
        return self.host.get(DatabaseService).db

    @property
    def admin_project(self) -> str:
        return str(self.admin["project_id"])

    async def call(self, method: str, path: str, token: str | None = None,
                   version: str | None = None, **kwargs: Any) -> tuple[int, Any, Any]:
        """`method` on base + `path` as `token` (None: the admin; "": anonymous, no token
        header): (status, the JSON body or None, the response headers)."""
        headers = dict(kwargs.pop("headers", {}))
        token = self.admin_token if token is None else token
        if token:
            headers["X-Auth-Token"] = token
        version = version or self.microversion
        if version:
            headers["X-OpenStack-Nova-API-Version"] = version
        async with self.session.request(method, self.base + path, headers=headers,
                                        **kwargs) as resp:
            body = await resp.json() if resp.content_type == "application/json" else None
            return resp.status, body, resp.headers

    async def authenticate(self, auth: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        """POST `auth` (a v3 auth body, e.g. password_auth's) to the Identity API, which must
        issue a token: (the token, its body)."""
        code, body, headers = await self.call("POST", "/identity/v3/auth/tokens", "", json=auth)
        assert code == 201, body
        return str(headers["X-Subject-Token"]), dict(body["token"])

    async def token(self, user: str, password: str, project: str) -> str:
        token, _ = await self.authenticate(
            password_auth(user, password, project, domain_ref=DEFAULT_DOMAIN_ID))
        return token

    async def user_token(self, project: str,
                         roles: tuple[str, ...] = ("member", "reader")) -> tuple[str, str]:
        """A new user with `roles` on `project` (created if needed): (token, project_id)."""
        name, project_id = await add_user(self.db, project, roles)
        return await self.token(name, "secret", project), project_id


def fields_of(cloud: ApiCloud) -> dict[str, Any]:
    """`cloud`'s fields, to make a surface's subclass of it: Sub(**fields_of(cloud), extra=...)."""
    return {field.name: getattr(cloud, field.name) for field in dataclasses.fields(cloud)}


Prepare = Callable[[Database, CloudConfig, dict[str, Any]], Awaitable[None]]


@contextlib.asynccontextmanager
async def running_cloud(tmp_path: Path, *, agent: bool = True, boot_image: bool = True,
                        prepare: Prepare | None = None, cfg: CloudConfig | None = None,
                        **sections: dict[str, str]) -> AsyncIterator[ApiCloud]:
    """Controller (+ agent unless not `agent`) of `cfg` (default: loopback_config with
    `sections`, e.g. another database), bootstrapped into tmp_path, the boot image added unless
    not `boot_image`, `prepare(db, cfg, creds)` run (networks...), and the admin's token."""
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
        async with aiohttp.ClientSession() as session:
            cloud = ApiCloud(f"http://127.0.0.1:{host.get(ApiService).port}", session, "", creds,
                             host)
            cloud.admin_token = await cloud.token("admin", creds["password"], "admin")
            yield cloud
    finally:
        await host.stop()


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


async def active_server(cloud: ApiCloud, name: str = "vm", token: str | None = None,
                        **extra: Any) -> dict[str, Any]:
    """A server of the boot image and flavor 1 (with `extra` in its create body), ACTIVE: its
    detailed view."""
    code, body, _ = await cloud.call("POST", "/compute/v2.1/servers", token=token, json={
        "server": {"name": name, "imageRef": BOOT_IMAGE, "flavorRef": "1", **extra}})
    assert code == 202, body
    return await wait_status(cloud, body["server"]["id"], "ACTIVE")


async def listed_names(cloud: ApiCloud, query: str, token: str | None = None) -> list[str]:
    """The names /servers/detail?`query` lists, in its order."""
    code, body, _ = await cloud.call("GET", f"/compute/v2.1/servers/detail?{query}", token=token)
    assert code == 200, body
    return [server["name"] for server in body["servers"]]


async def action(cloud: ApiCloud, server_id: str, body: dict[str, Any], expect: int = 202) -> Any:
    code, resp, headers = await cloud.call("POST", f"/compute/v2.1/servers/{server_id}/action",
                                           json=body)
    assert code == expect, (body, code, resp)
    return resp, headers


@pytest.fixture
async def cloud(db_url: str, tmp_path: Path) -> AsyncIterator[ApiCloud]:
    """running_cloud on each backend (db_url, tests/conftest.py: a fresh database per test)."""
    async with running_cloud(tmp_path, database={"connection": db_url}) as running:
        yield running


def patch_headers() -> dict[str, Any]:
    """The Image API's JSON-patch content type."""
    return {"Content-Type": "application/openstack-images-v2.1-json-patch"}
