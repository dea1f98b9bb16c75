"""A real controller + one agent (fake driver) with a FlatManager network ``private`` and a
floating IP pool ``public``. FlatManager plumbs nothing on the host (the admin's bridge is
assumed), so these API tests need no root; the bridges, dnsmasq and NAT behind the same calls
are tested in tests/network."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from loopback import loopback_config

from cloudd.agent.service import build_agent
from cloudd.api.identity.bootstrap import bootstrap
from cloudd.api.service import ApiService
from cloudd.controller import build_controller
from cloudd.db.service import DatabaseService
from cloudd.network import floating, ipam

from ..compute.conftest import BOOT_IMAGE, Cloud, add_boot_image
from ..compute.test_lifecycle import OPENSTACK

__all__ = ["BOOT_IMAGE", "OPENSTACK", "Cloud", "cli", "netcloud"]
FIXED_RANGE = "10.20.0.0/24"
FLOATING_RANGE = "203.0.113.0/29"  # TEST-NET-3: never bound anywhere (FlatManager binds nothing)


@pytest.fixture
async def netcloud(tmp_path: Path) -> AsyncIterator[Cloud]:
    cfg = loopback_config(tmp_path, network={"network_manager": "FlatManager",
                                             "force_dhcp_release": "false"})
    host = build_controller(cfg)
    build_agent(cfg, host)
    await host.start()
    try:
        db = host.get(DatabaseService).db
        creds = await bootstrap(db, tmp_path)
        await add_boot_image(db, cfg, tmp_path)
        await ipam.create_networks(db, ipam.FLAT, "private", FIXED_RANGE, bridge="br100")
        await floating.create_floating_ips(db, FLOATING_RANGE, pool="public")
        base = f"http://127.0.0.1:{host.get(ApiService).port}"
        async with aiohttp.ClientSession() as session:
            cloud = Cloud(base, session, "", creds["project_id"], db)
            cloud.admin_token = await cloud.token("admin", creds["password"], "admin")
            yield cloud
    finally:
        await host.stop()


def cli(cloud: Cloud, tmp_path: Path) -> Callable[..., Any]:
    """``run(*args)``: the unmodified openstack CLI as admin (JSON output parsed)."""
    password = (tmp_path / "admin-password").read_text().strip()
    env = {**os.environ, "OS_AUTH_URL": cloud.base + "/identity", "OS_USERNAME": "admin",
           "OS_PASSWORD": password, "OS_PROJECT_NAME": "admin", "OS_USER_DOMAIN_NAME": "Default",
           "OS_PROJECT_DOMAIN_NAME": "Default", "OS_IDENTITY_API_VERSION": "3",
           "OS_REGION_NAME": "RegionOne", "OS_INTERFACE": "public"}

    def run(*args: str, json_out: bool = True) -> Any:
        command = [str(OPENSTACK), *args, *(["-f", "json"] if json_out else [])]
        proc = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, (args, proc.stderr)
        return json.loads(proc.stdout) if json_out and proc.stdout.strip() else proc.stdout

    return run
