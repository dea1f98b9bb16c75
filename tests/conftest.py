"""Shared fixtures: `db` is a freshly migrated cloudd Database, on SQLite and on PostgreSQL.

The PostgreSQL server is, in order: $CLOUDD_TEST_PG_URL;
postgresql://postgres@127.0.0.1:5432/postgres if it answers; else a throwaway cluster that
scripts/pg-test-cluster.sh starts for this session.
Each test gets its own database `cloudd_test_<hex>` on that server, dropped afterwards.

No test skips: a skip is a failure of the run unless its reason is on the (empty) allowlist of
tests/skip_guard.py, whose hooks are imported here. A test that needs a real part which is
missing fails through tests/harness/requires.py, naming the script that installs it.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import subprocess
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import log_audit
import pytest
import skip_guard
from skip_guard import (  # noqa: F401 - hooks of this conftest, beside their helpers there
    pytest_collectreport,
    pytest_runtest_makereport,
    pytest_terminal_summary,
)

from cloudd.config import models as config_models
from cloudd.db import Database, connect

DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
CLUSTER_SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "pg-test-cluster.sh"
BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


def _pg_answers(url: str) -> bool:
    async def probe() -> bool:
        try:
            conn = await asyncpg.connect(url, timeout=3)
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
            return False
        await conn.close()
        return True

    # In a thread of its own: the caller may be an async fixture with a running event loop.
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, probe()).result()


@pytest.fixture(scope="session")
def pg_server_url() -> Iterator[str]:
    """URL of a PostgreSQL server (maintenance database) where tests may create databases."""
    if url := os.environ.get("CLOUDD_TEST_PG_URL"):
        yield url
        return
    if _pg_answers(DEFAULT_PG_URL):
        yield DEFAULT_PG_URL
        return
    started = subprocess.run(
        [str(CLUSTER_SCRIPT), "start"], capture_output=True, text=True, timeout=600, check=False
    )
    if started.returncode != 0:
        pytest.fail(f"{CLUSTER_SCRIPT.name} start failed:\n{started.stderr}")
    url, cluster_dir = started.stdout.split()
    try:
        yield url
    finally:
        subprocess.run([str(CLUSTER_SCRIPT), "stop", cluster_dir], check=False, timeout=60)


def with_database_name(server_url: str, name: str) -> str:
    return urlsplit(server_url)._replace(path=f"/{name}").geturl()


@pytest.fixture(params=BACKENDS)
async def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """URL of an empty database on the parametrized backend (no migrations applied)."""
    if request.param == "sqlite":
        yield f"sqlite://{tmp_path}/cloudd.db"
        return
    server_url = request.getfixturevalue("pg_server_url")
    name = f"cloudd_test_{secrets.token_hex(6)}"
    admin = await asyncpg.connect(server_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield with_database_name(server_url, name)
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[Database]:
    """A freshly migrated Database on the parametrized backend."""
    database = await connect(db_url)
    try:
        await database.migrate()
        yield database
    finally:
        await database.close()


# ----- the whole run's logs, and no secret in them (tests/log_audit.py) ----------------------
def pytest_configure(config: pytest.Config) -> None:
    log_audit.install_recorders()
    log_audit.start_capture()


@pytest.fixture(autouse=True)
def _capture_every_log_record() -> None:
    log_audit.ensure_capture()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    log_audit.report(session)
    skip_guard.fail_on_skipped_collections(session)


@pytest.fixture
def unreleased_microversions(monkeypatch: pytest.MonkeyPatch) -> None:
    """Lets a test cloud advertise compute microversions above the highest cloudd releases, to
    test the parts of a later range it has built before the range is complete (a user's
    configuration asking for them is refused: tests/config/test_config.py)."""
    monkeypatch.setattr(config_models, "HIGHEST_MICROVERSION", "2.100")
