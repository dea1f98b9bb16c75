"""Real processes to break (harness.processes): `cloudd serve` and `cloudd agent` subprocesses
(fake driver) on a prepared database, and a REST client with an admin token."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from harness.config import free_port
from harness.processes import Processes, prepare_database


@pytest.fixture
async def processes(db_url: str, tmp_path: Path) -> AsyncIterator[Processes]:
    """Configs and a prepared database on each backend (db_url, tests/conftest.py); the test
    starts (and breaks) the processes."""
    async with aiohttp.ClientSession() as session:
        procs = Processes(tmp_path, db_url, free_port(), free_port(), session)
        procs.join_token = await prepare_database(procs.db_url, procs.config, tmp_path)
        try:
            yield procs
        finally:
            procs.stop_all()
            procs.kill(procs.agent)
            procs.kill(procs.controller)
