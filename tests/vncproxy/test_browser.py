"""The console URL from `openstack console url show --novnc` in real headless Chromium.

Chromium is driven by Debian's chromedriver over plain W3C WebDriver calls (aiohttp), so no
browser download and no Selenium are needed. The guest here is a real QEMU with no disk: its
VGA console shows SeaBIOS's banner. When the libvirt driver's guests have a login prompt on VGA,
a follow-up can compare the screenshot with the guest's text.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from harness import requires
from harness.clients import OPENSTACK
from harness.console import ConsoleCloud as Cloud
from harness.console import point_console_at

from cloudd.consoleauth.tokens import token_hash

# Installed by scripts/install-console.sh (`make install`); a missing one fails the test.
CONSOLE_SCRIPT = "scripts/install-console.sh"
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"

pytestmark = pytest.mark.slow

# Reads the page's status line and whether the canvas holds anything but black.
PAGE_STATE = """
const canvas = document.querySelector('canvas');
let lit = 0;
if (canvas && canvas.width > 0) {
  const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
  for (let i = 0; i < data.length; i += 4) { if (data[i] + data[i + 1] + data[i + 2] > 96) lit++; }
}
const status = document.getElementById('status');
return {status: status ? status.textContent : '', lit: lit,
        width: canvas ? canvas.width : 0, height: canvas ? canvas.height : 0};
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class WebDriver:
    def __init__(self, session: aiohttp.ClientSession, base: str, chromium: str) -> None:
        self.http, self.base, self.session_id = session, base, ""
        self.chromium = chromium

    async def call(self, method: str, path: str, body: Any = None) -> Any:
        url = f"{self.base}/session{'/' + self.session_id if self.session_id else ''}{path}"
        async with self.http.request(method, url, json=body) as resp:
            payload = await resp.json(content_type=None)
            assert resp.status == 200, payload
            return payload["value"]

    async def start(self, profile: Path) -> None:
        caps = {"capabilities": {"alwaysMatch": {"goog:chromeOptions": {
            "binary": self.chromium,
            "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--no-first-run", "--disable-background-networking", "--disable-sync",
                     "--disable-component-update", f"--user-data-dir={profile}",
                     "--window-size=1024,768"]}}}}
        self.session_id = (await self.call("POST", "", caps))["sessionId"]

    async def script(self, source: str) -> Any:
        return await self.call("POST", "/execute/sync", {"script": source, "args": []})


@pytest.fixture
async def webdriver(tmp_path: Path) -> AsyncIterator[WebDriver]:
    chromium = requires.installed("chromium", CONSOLE_SCRIPT)
    chromedriver = requires.installed("chromedriver", CONSOLE_SCRIPT)
    port = _free_port()
    proc = await asyncio.create_subprocess_exec(
        chromedriver, f"--port={port}", stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL)
    driver: WebDriver | None = None
    try:
        async with aiohttp.ClientSession() as http:
            base = f"http://127.0.0.1:{port}"
            for _ in range(200):
                try:
                    async with http.get(f"{base}/status") as resp:
                        if resp.status == 200:
                            break
                except aiohttp.ClientError:
                    await asyncio.sleep(0.05)
            driver = WebDriver(http, base, chromium)
            await driver.start(tmp_path / "chromium-profile")
            yield driver
            await driver.call("DELETE", "")
    finally:
        proc.terminate()
        await proc.wait()


def console_url_from_cli(cloud: Cloud, server_id: str) -> str:
    env = {**os.environ, "OS_AUTH_URL": cloud.base + "/identity", "OS_USERNAME": "admin",
           "OS_PASSWORD": cloud.admin["password"], "OS_PROJECT_NAME": "admin",
           "OS_USER_DOMAIN_NAME": "Default", "OS_PROJECT_DOMAIN_NAME": "Default",
           "OS_IDENTITY_API_VERSION": "3", "OS_REGION_NAME": "RegionOne",
           "OS_INTERFACE": "public"}
    proc = subprocess.run([str(OPENSTACK), "console", "url", "show", "--novnc", server_id,
                           "-f", "json"], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return str(json.loads(proc.stdout)["url"])


async def test_console_url_opens_a_working_console_in_chromium(
        cloud: Cloud, qemu_vnc: int, webdriver: WebDriver) -> None:
    server_id = await cloud.boot()
    url = await asyncio.to_thread(console_url_from_cli, cloud, server_id)
    assert url.startswith(cloud.proxy + "/vnc_lite.html?path=%3Ftoken%3D")
    token = url.rsplit("%3D", 1)[1]
    assert await cloud.db.fetchval("SELECT instance_uuid FROM console_auth_tokens"
                                   " WHERE token_hash = $1", token_hash(token)) == server_id
    await point_console_at(cloud.db, server_id, qemu_vnc)

    await webdriver.call("POST", "/url", {"url": url})
    state: dict[str, Any] = {}
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        state = await webdriver.script(PAGE_STATE)
        # Connected, and the first framebuffer update has drawn SeaBIOS's text.
        if state["status"].startswith("Connected") and state["lit"] > 200:
            break
        await asyncio.sleep(0.2)
    png = base64.b64decode(await webdriver.call("GET", "/screenshot"))
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "vnc-console-chromium.png"
    await asyncio.to_thread(shot.write_bytes, png)
    assert state["status"].startswith("Connected to QEMU"), (state, shot)
    assert state["width"] >= 640 and state["lit"] > 200, (state, shot)
    assert png.startswith(b"\x89PNG")
