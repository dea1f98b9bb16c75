"""A controller with its console proxy and one fake-driver agent, an admin token, and a real QEMU
VNC server to relay to."""

from __future__ import annotations

import asyncio
import shutil
import socket
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
from cloudd.api.service import ApiService
from cloudd.compute.api import BuildRequest, ComputeAPI
from cloudd.controller import build_controller
from cloudd.core import ServiceHost
from cloudd.db import Database
from cloudd.db.service import DatabaseService
from cloudd.vncproxy.service import VncProxyService

QEMU = shutil.which("qemu-system-x86_64")


@dataclass
class Cloud:
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
        project_id = await ensure_project(self.db, project)
        name = f"user-{uuid.uuid4().hex[:8]}"
        user_id = uuid.uuid4().hex
        await self.db.execute(
            "INSERT INTO users (id, name, password_hash, default_project_id, created_at)"
            " VALUES ($1, $2, $3, $4, $5)", user_id, name, hash_password("secret"), project_id,
            time.time())
        for role in ("member", "reader"):
            await self.db.execute(
                "INSERT INTO role_assignments (user_id, project_id, role_id) VALUES ($1, $2, $3)",
                user_id, project_id, await ensure_role(self.db, role))
        return await self.token(name, "secret", project)

    async def token(self, user: str, password: str, project: str) -> str:
        body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
            "name": user, "domain": {"id": "default"}, "password": password}}},
            "scope": {"project": {"name": project, "domain": {"id": "default"}}}}}
        async with self.session.post(f"{self.base}/identity/v3/auth/tokens", json=body) as resp:
            assert resp.status == 201, await resp.text()
            return resp.headers["X-Subject-Token"]

    async def boot(self, project: str = "admin") -> str:
        """An ACTIVE server of `project` (through the compute API the REST layer calls: its
        image check needs an image service, which these tests do not need)."""
        project_id = await self.db.fetchval("SELECT id FROM projects WHERE name = $1", project)
        flavor = await self.db.fetchrow("SELECT * FROM flavors WHERE flavorid = '1'")
        req = BuildRequest(name="console-vm", flavor=flavor, project_id=project_id,
                           user_id="u1", image_ref=str(uuid.uuid4()))
        rows = await ComputeAPI(self.host).create(req, f"req-{uuid.uuid4()}")
        server_id = str(rows[0]["uuid"])
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
async def cloud(tmp_path: Path) -> AsyncIterator[Cloud]:
    cfg = loopback_config(tmp_path, vnc={
        "novncproxy_base_url": "http://127.0.0.1:0/vnc_lite.html"})
    host = build_controller(cfg)
    build_agent(cfg, host)
    await host.start()
    try:
        db = host.get(DatabaseService).db
        creds = await bootstrap(db, tmp_path)
        async with aiohttp.ClientSession() as session:
            cloud = Cloud(host, f"http://127.0.0.1:{host.get(ApiService).port}",
                          f"http://127.0.0.1:{host.get(VncProxyService).port}", session, "",
                          creds["password"], db)
            cloud.admin_token = await cloud.token("admin", creds["password"], "admin")
            yield cloud
    finally:
        await host.stop()


def _free_vnc_port() -> int:
    """A free port of a VNC display (5900 + N); well above libvirt's autoport start."""
    for port in range(6200, 6900):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free VNC display")


@pytest.fixture
async def qemu_vnc() -> AsyncIterator[int]:
    """A real QEMU whose VNC server listens on 127.0.0.1; yields its port. The guest has no
    disk: SeaBIOS prints its banner and "No bootable device" on the VGA console."""
    if QEMU is None:
        pytest.skip("qemu-system-x86_64 is not installed (scripts/install-console.sh)")
    port = _free_vnc_port()
    proc = await asyncio.create_subprocess_exec(
        QEMU, "-nodefaults", "-display", "none", "-vnc", f"127.0.0.1:{port - 5900}", "-vga", "std",
        "-machine", "pc", "-m", "64", "-no-reboot", "-boot", "menu=off",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.close()
                break
            except OSError:
                if proc.returncode is not None or time.monotonic() > deadline:
                    err = await proc.stderr.read() if proc.stderr else b""
                    raise RuntimeError(f"QEMU did not start its VNC server: {err!r}") from None
                await asyncio.sleep(0.05)
        yield port
    finally:
        if proc.returncode is None:
            proc.kill()
        await proc.wait()


async def point_console_at(db: Database, server_id: str, port: int) -> None:
    """The fake driver has no VNC server; its console tokens are pointed at QEMU's."""
    await db.execute("UPDATE console_auth_tokens SET host = '127.0.0.1', port = $1"
                     " WHERE instance_uuid = $2", port, server_id)
