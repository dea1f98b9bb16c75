"""A real libvirt guest's console in a browser, the way the README's quick start reaches it.

The guest is registered by `scripts/register-guest.py` (as `make run` does; twice, the second
run keeps the images), booted from the bzImage kernel (its console shows on VGA), and driven
with the openstack CLI only: server create --wait, console log show, console url show --novnc,
server delete --wait. The URL opens in headless Chromium (Debian's chromium + chromedriver).

The framebuffer is compared with what the guest prints, without OCR: the guest writes the same
lines to its serial port (the console log) and to VGA text mode. Each cell of the canvas's 80x25
text grid becomes a fingerprint of its pixels, and the lines taken from the console log (ready
line, getty banner, login prompt) must appear on consecutive rows: blank cells exactly at the
spaces, and equal glyphs exactly where the characters are equal. SeaBIOS's screen, a blank or
half-drawn canvas, or other text cannot match.
"""
# ruff: noqa: F811 - the fixtures imported below are test parameters here

from __future__ import annotations

import asyncio
import base64
import json
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from harness.clients import OPENSTACK
from harness.libvirt import LibvirtCloud, libvirt_cloud
from harness.libvirt_host import READY_LINE, libvirt_host, virsh  # noqa: F401 - fixture

from .test_browser import ARTIFACTS, WebDriver, webdriver  # noqa: F401

ROOT = Path(__file__).resolve().parents[2]
LOGIN_PROMPT = "cloudd-guest login:"

pytestmark = pytest.mark.slow

# Each cell of the canvas's 80x25 text grid as a fingerprint of its lit pixels ('' if blank).
TEXT_CELLS = """
const canvas = document.querySelector('canvas');
const status = document.getElementById('status');
const out = {status: status ? status.textContent : '', width: 0, height: 0, rows: []};
if (!canvas || canvas.width < 320) return out;
out.width = canvas.width; out.height = canvas.height;
const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
const cw = Math.floor(canvas.width / 80), ch = Math.floor(canvas.height / 25);
for (let row = 0; row < 25; row++) {
  const cells = [];
  for (let col = 0; col < 80; col++) {
    let count = 0, hash = 0;
    for (let y = row * ch; y < (row + 1) * ch; y++) {
      for (let x = col * cw; x < (col + 1) * cw; x++) {
        const i = (y * canvas.width + x) * 4;
        const lit = data[i] + data[i + 1] + data[i + 2] > 200 ? 1 : 0;
        count += lit;
        hash = (Math.imul(hash, 31) + lit * ((y - row * ch) * cw + (x - col * cw) + 1)) >>> 0;
      }
    }
    cells.push(count ? count + ':' + hash : '');
  }
  out.rows.push(cells);
}
return out;
"""


def spells(rows: list[list[str]], lines: list[str]) -> bool:
    """Whether some screen rows show ``lines`` (in order, one per row): blank cells where the
    text has spaces, and glyphs that are equal exactly where the characters are equal, over
    all the lines together. A trailing "_" stands for the cursor cell, which may blink."""
    for start in range(len(rows) - len(lines) + 1):
        glyph_of: dict[str, str] = {}
        char_of: dict[str, str] = {}
        if all(_row_spells(rows[start + n], line, glyph_of, char_of)
               for n, line in enumerate(lines)):
            return True
    return False


def _row_spells(cells: list[str], line: str, glyph_of: dict[str, str],
                char_of: dict[str, str]) -> bool:
    cursor = len(line) - 1 if line.endswith("_") else None
    for col, char in enumerate(line.ljust(len(cells))[:len(cells)]):
        glyph = cells[col]
        if col == cursor:
            continue
        if char == " ":
            if glyph:
                return False
        elif not glyph or glyph_of.setdefault(char, glyph) != glyph or \
                char_of.setdefault(glyph, char) != char:
            return False
    return True


async def openstack(cloud: LibvirtCloud, *args: str) -> Any:
    """The openstack CLI as the admin user of ``cloud``; its JSON output (-f json)."""
    env = {**os.environ, "OS_AUTH_URL": cloud.base + "/identity", "OS_USERNAME": "admin",
           "OS_PASSWORD": cloud.admin["password"], "OS_PROJECT_NAME": "admin",
           "OS_USER_DOMAIN_NAME": "Default", "OS_PROJECT_DOMAIN_NAME": "Default",
           "OS_IDENTITY_API_VERSION": "3", "OS_REGION_NAME": "RegionOne", "OS_INTERFACE": "public"}
    env.pop("OS_CLOUD", None)
    proc = await asyncio.create_subprocess_exec(
        str(OPENSTACK), *args, env=env, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 180)
    assert proc.returncode == 0, (args, err.decode())
    text = out.decode()
    return json.loads(text) if "-f" in args and "json" in args else text


async def register_with_script(cloud: LibvirtCloud, guest_dir: Path) -> list[str]:
    """`scripts/register-guest.py` against this cloud's database, twice: its outputs."""
    conf = cloud.state / "register.conf"
    await asyncio.to_thread(conf.write_text, (
        f"[DEFAULT]\nstate_dir = {cloud.state}\n\n"
        f"[database]\nconnection = sqlite://{cloud.state}/cloudd.db\n\n"
        "[compute]\ncompute_driver = libvirt\n"))
    outputs = []
    for _ in range(2):
        proc = await asyncio.create_subprocess_exec(
            str(ROOT / ".venv/bin/python"), str(ROOT / "scripts/register-guest.py"),
            "--config", str(conf), str(guest_dir), stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT)
        out, _ = await proc.communicate()
        assert proc.returncode == 0, out.decode()
        outputs.append(out.decode())
    return outputs


@pytest.fixture
async def guest_cloud(libvirt_host: Path) -> AsyncIterator[LibvirtCloud]:
    async with libvirt_cloud(libvirt_host, register=False) as cloud:
        yield cloud


async def test_console_url_shows_the_guest_login_prompt(
        guest_cloud: LibvirtCloud, libvirt_host: Path, webdriver: WebDriver) -> None:
    cloud = guest_cloud
    first, second = await register_with_script(cloud, libvirt_host)
    assert first.count("imported") == 3 and second.count("already registered") == 3, (first, second)
    images = await openstack(cloud, "image", "list", "-f", "json")
    assert {"cloudd-guest", "cloudd-guest-kernel", "cloudd-guest-ramdisk"} <= {i["Name"] for i in images}

    server = await openstack(cloud, "server", "create", "--image", "cloudd-guest", "--flavor",
                             "m1.nano", "--wait", "console-vm1", "-f", "json")
    assert server["status"] == "ACTIVE", server
    log = await wait_for_login_prompt(cloud, server["id"])
    ready_line = next(line[line.index(READY_LINE):].rstrip()
                      for line in log.splitlines() if READY_LINE in line)
    banner = next(line.rstrip() for line in log.splitlines() if line.rstrip().endswith("/dev/ttyS0"))
    # What the guest printed on its serial port, as VGA shows it: the ready line, an empty
    # line, getty's banner (naming tty1 there), an empty line, the prompt and its cursor.
    expected = [ready_line, "", banner.replace("/dev/ttyS0", "/dev/tty1"), "", LOGIN_PROMPT + " _"]

    url = (await openstack(cloud, "console", "url", "show", "--novnc", server["id"], "-f", "json"))["url"]
    assert url.startswith(cloud.proxy + "/vnc_lite.html?path=%3Ftoken%3D"), url
    await webdriver.call("POST", "/url", {"url": url})
    screen = await wait_for_screen(webdriver, expected)
    png = base64.b64decode(await webdriver.call("GET", "/screenshot"))
    shot = ARTIFACTS / "guest-console-chromium.png"
    await asyncio.to_thread(ARTIFACTS.mkdir, exist_ok=True)
    await asyncio.to_thread(shot.write_bytes, png)
    assert screen["status"].startswith("Connected to QEMU (instance-"), (screen["status"], shot)
    # On a mismatch, what the serial console shows now: a line printed after the prompt shows
    # on both consoles.
    assert spells(screen["rows"], expected), (
        expected, shot, (await openstack(cloud, "console", "log", "show", server["id"]))[-600:])
    # Same layout, other letters: the comparison would notice.
    assert not spells(screen["rows"], [ready_line.replace("hostname", "hostmane")])

    await openstack(cloud, "server", "delete", "--wait", server["id"])
    assert server["id"] not in virsh("list", "--all", "--uuid").split()


async def wait_for_login_prompt(cloud: LibvirtCloud, server_id: str) -> str:
    """`openstack console log show` until the guest's ready line and login prompt are there."""
    deadline = time.monotonic() + 90
    log = ""
    while time.monotonic() < deadline:
        log = await openstack(cloud, "console", "log", "show", server_id)
        if READY_LINE in log and LOGIN_PROMPT in log:
            return str(log)
        await asyncio.sleep(1)
    raise AssertionError(f"no login prompt on the serial console:\n{log[-2000:]}")


async def wait_for_screen(webdriver: WebDriver, expected: list[str]) -> dict[str, Any]:
    """The canvas's text cells once noVNC is connected and the guest's lines are drawn."""
    deadline = time.monotonic() + 30
    screen: dict[str, Any] = {"status": "", "rows": []}
    while time.monotonic() < deadline:
        screen = await webdriver.script(TEXT_CELLS)
        if screen["status"].startswith("Connected") and spells(screen["rows"], expected):
            break
        await asyncio.sleep(0.3)
    return screen
