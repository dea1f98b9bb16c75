"""A real controller + one agent (fake driver) with a FlatManager network ``private`` and a
floating IP pool ``public``. FlatManager plumbs nothing on the host (the admin's bridge is
assumed), so these API tests need no root; the bridges, dnsmasq and NAT behind the same calls
are tested in tests/network."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from harness.api import ApiCloud, running_cloud

from cloudd.config import CloudConfig
from cloudd.db import Database
from cloudd.network import floating, ipam

FIXED_RANGE = "10.20.0.0/24"
FLOATING_RANGE = "203.0.113.0/29"  # TEST-NET-3: never bound anywhere (FlatManager binds nothing)


async def _networks(db: Database, cfg: CloudConfig, creds: dict[str, Any]) -> None:
    await ipam.create_networks(db, ipam.FLAT, "private", FIXED_RANGE, bridge="br100")
    await floating.create_floating_ips(db, FLOATING_RANGE, pool="public")


@pytest.fixture
async def netcloud(db_url: str, tmp_path: Path) -> AsyncIterator[ApiCloud]:
    async with running_cloud(tmp_path, prepare=_networks, database={"connection": db_url}, network={
            "network_manager": "FlatManager", "force_dhcp_release": "false"}) as cloud:
        yield cloud
