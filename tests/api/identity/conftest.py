"""A real controller slice for identity tests: migrated database, bootstrap, API on loopback
(harness.identity), reached as an ApiCloud."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from harness.api import ApiCloud
from harness.identity import identity_cloud


@pytest.fixture
async def cloud(db_url: str, tmp_path: Path) -> AsyncIterator[ApiCloud]:
    async with identity_cloud(db_url, tmp_path) as running:
        yield running
