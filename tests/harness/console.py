"""The cloud with its console proxy: a controller and one fake-driver agent, an admin token, and
a real QEMU VNC server to relay to."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from cloudd.core import ServiceHost
from cloudd.db import Database
from cloudd.frontdoor.compute import BuildRequest, ComputeAPI
from cloudd.vncproxy.service import VncProxyService

from .api import started
from .qemu_vnc import QEMU, running_qemu_vnc
from .users import add_user, issue_token


@dataclass
class ConsoleCloud:
    host: ServiceHost
    base: str  # the API: http://127.0.0.1:<port>
    proxy: str  # the console proxy: http://127.0.0.1:<port>
    session: aiohttp.ClientSession
    admin_token: str
    password: str
    db: Database

    async def call(self, method: str, path: str, token: str | None = None,
                   version: str | None = None, **kwargs: Any) -> tuple[int, Any]:
        headers = {"X-Auth-Token": token or self.admin_token}
        if version:
            headers["X-OpenStack-Nova-API-Version"] = version
        async with self.session.request(method, self.base + path, headers=headers,
                                        **kwargs) as resp:
            body = await resp.json() if resp.content_type == "application/json" else None
            return resp.status, body

    async def user_token(self, project: str) -> str:
        """A member of `project` (created if needed)."""
        name, _ = await add_user(self.db, project, ("member", "reader"))
        return await self.token(name, "secret", project)

    async def token(self, user: str, password: str, project: str) -> str:
        return await issue_token(self.session, self.base, user, password, project)

    async def boot(self, project: str = "admin") -> str:
        """An ACTIVE server of `project` (through the compute API the REST layer calls: its
        image check needs an image service, which these tests do not need)."""
        project_id = await self.db.fetchval("SELECT id FROM projects WHERE name = $1", project)
        flavor = await self.db.fetchrow("SELECT * FROM flavors WHERE flavorid = '1'")
        assert flavor is not None
        req = BuildRequest(name="console-vm", flavor=flavor, project_id=project_id,
                           user_id="u1", image_ref=str(uuid.uuid4()))
        rows = await ComputeAPI(self.host).create(req, f"req-{uuid.uuid4()}")
        server_id = rows[0].uuid
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            _, body = await self.call("GET", f"/compute/v2.1/servers/{server_id}")
            if body["server"]["status"] == "ACTIVE":
                return server_id
            await asyncio.sleep(0.1)
        raise AssertionError(f"{server_id} did not become ACTIVE")

    async def console_url(self, server_id: str, token: str | None = None) -> str:
        code, body = await self.call("POST", f"/compute/v2.1/servers/{server_id}/action", token,
                                     json={"os-getVNCConsole": {"type": "novnc"}})
        assert code == 200, body
        return str(body["console"]["url"])


@pytest.fixture
async def cloud(tmp_path: Path) -> AsyncIterator[ConsoleCloud]:
    async with started(tmp_path, boot_image=False, vnc={
            "novncproxy_base_url": "http://127.0.0.1:0/vnc_lite.html"}) as up:
        yield ConsoleCloud(up.host, up.base, f"http://127.0.0.1:{up.host.get(VncProxyService).port}",
                           up.session, up.admin_token, up.creds["password"], up.db)


@pytest.fixture
async def qemu_vnc() -> AsyncIterator[int]:
    """A real QEMU VNC server on 127.0.0.1 (see harness.qemu_vnc); yields its port."""
    if QEMU is None:
        pytest.skip("qemu-system-x86_64 is not installed (scripts/install-console.sh)")
    async with running_qemu_vnc() as port:
        yield port


async def point_console_at(db: Database, server_id: str, port: int) -> None:
    """The fake driver has no VNC server; its console tokens are pointed at QEMU's."""
    await db.execute("UPDATE console_auth_tokens SET host = '127.0.0.1', port = $1"
                     " WHERE instance_uuid = $2", port, server_id)
