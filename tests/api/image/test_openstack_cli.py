"""The unmodified `openstack` CLI (and the SDK under it) against the Image API and servers."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from harness.api import ApiCloud as Cloud
from harness.clients import OPENSTACK


@pytest.mark.slow
async def test_image_commands_and_booting_by_image_name(cloud: Cloud, tmp_path: Path) -> None:
    password = (tmp_path / "admin-password").read_text().strip()
    env = {**os.environ, "OS_AUTH_URL": cloud.base + "/identity", "OS_USERNAME": "admin",
           "OS_PASSWORD": password, "OS_PROJECT_NAME": "admin", "OS_USER_DOMAIN_NAME": "Default",
           "OS_PROJECT_DOMAIN_NAME": "Default", "OS_IDENTITY_API_VERSION": "3",
           "OS_REGION_NAME": "RegionOne", "OS_INTERFACE": "public"}
    disk = tmp_path / "disk.raw"
    disk.write_bytes(os.urandom(5 * 1024 * 1024 + 3))
    saved = tmp_path / "saved.raw"

    def run(*args: str, parse: bool = True) -> Any:
        proc = subprocess.run([str(OPENSTACK), *args, *(["-f", "json"] if parse else [])],
                              env=env, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, (args, proc.stderr)
        return json.loads(proc.stdout) if parse else proc.stdout

    def session() -> dict[str, Any]:
        out: dict[str, Any] = {}
        out["created"] = run("image", "create", "--file", str(disk), "--disk-format", "raw",
                             "--container-format", "bare", "--public", "cirros-cli")
        run("image", "create", "--disk-format", "qcow2", "--container-format", "bare", "gone")
        out["list"] = run("image", "list")
        run("image", "save", "--file", str(saved), "cirros-cli", parse=False)
        run("image", "set", "--property", "foo=bar", "cirros-cli", parse=False)
        out["shown"] = run("image", "show", "cirros-cli")
        run("image", "delete", "gone", parse=False)
        out["after_delete"] = run("image", "list")
        out["server"] = run("server", "create", "--image", "cirros-cli", "--flavor", "m1.tiny",
                            "--wait", "vm-cli")
        out["servers"] = run("server", "list")
        return out

    out = await asyncio.to_thread(session)
    assert out["created"]["status"] == "active"
    assert {"cirros-cli", "gone"} <= {i["Name"] for i in out["list"]}
    assert saved.read_bytes() == disk.read_bytes()
    assert out["shown"]["properties"]["foo"] == "bar"
    assert out["shown"]["size"] == disk.stat().st_size
    assert "gone" not in {i["Name"] for i in out["after_delete"]}
    assert out["server"]["status"] == "ACTIVE"
    [server] = [s for s in out["servers"] if s["Name"] == "vm-cli"]
    assert server["Image"] == "cirros-cli"
