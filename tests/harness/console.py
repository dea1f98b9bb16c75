"""The cloud with its console proxy: a controller and one fake-driver agent, an admin token, and
a real QEMU VNC server to relay to."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from cloudd.db import Database
from cloudd.frontdoor.compute import BuildRequest, ComputeAPI
from cloudd.vncproxy.service import VncProxyService

from . import requires
from .api import ApiCloud, fields_of, running_cloud
from .qemu_vnc import running_qemu_vnc


@dataclass(kw_only=True)
class ConsoleCloud(ApiCloud):
    """The cloud and its console proxy."""

    proxy: str  # the console proxy: http://127.0.0.1:<port>

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
            _, body, _ = await self.call("GET", f"/compute/v2.1/servers/{server_id}")
            if body["server"]["status"] == "ACTIVE":
                return server_id
            await asyncio.sleep(0.1)
        raise AssertionError(f"{server_id} did not become ACTIVE")

    async def console_url(self, server_id: str, token: str | None = None) -> str:
        code, body, _ = await self.call("POST", f"/compute/v2.1/servers/{server_id}/action", token,
                                        json={"os-getVNCConsole": {"type": "novnc"}})
        assert code == 200, body
        return str(body["console"]["url"])


@pytest.fixture
async def cloud(db_url: str, tmp_path: Path) -> AsyncIterator[ConsoleCloud]:
    async with running_cloud(tmp_path, boot_image=False, database={"connection": db_url}, vnc={
            "novncproxy_base_url": "http://127.0.0.1:0/vnc_lite.html"}) as up:
        yield ConsoleCloud(**fields_of(up),
                           proxy=f"http://127.0.0.1:{up.host.get(VncProxyService).port}")


@pytest.fixture
async def qemu_vnc() -> AsyncIterator[int]:
    """A real QEMU VNC server on 127.0.0.1 (see harness.qemu_vnc); yields its port."""
    requires.installed("qemu-system-x86_64", "scripts/install-console.sh")
    async with running_qemu_vnc() as port:
        yield port


async def point_console_at(db: Database, server_id: str, port: int) -> None:
    """The fake driver has no VNC server; its console tokens are pointed at QEMU's."""
    await db.execute("UPDATE console_auth_tokens SET host = '127.0.0.1', port = $1"
                     " WHERE instance_uuid = $2", port, server_id)
