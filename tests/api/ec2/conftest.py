"""A real controller (EC2 on a free port) + one agent with the fake driver, a Flat network with
floating IPs, and EC2 credentials made through the Identity API (harness.aws)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from harness.aws import Ec2Cloud, ec2_cloud


@pytest.fixture
async def ec2cloud(db_url: str, tmp_path: Path) -> AsyncIterator[Ec2Cloud]:
    async with ec2_cloud(db_url, tmp_path) as cloud:
        yield cloud
