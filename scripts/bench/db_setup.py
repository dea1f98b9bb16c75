"""Databases for the benchmarks: where PostgreSQL is, fresh databases, bulk rows."""

from __future__ import annotations

import json
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg

from cloudd import db as dbmod
from cloudd.config import CloudConfig
from cloudd.core import ServiceHost
from cloudd.db.service import DatabaseService
from cloudd.scheduler.request import FlavorSpec, RequestSpec
from cloudd.scheduler.service import SchedulerService

REPO = Path(__file__).resolve().parents[2]
LOCAL_PG = "postgresql://postgres@127.0.0.1:5432/postgres"


async def _pg_answers(url: str) -> bool:
    try:
        conn = await asyncpg.connect(url, timeout=3)
    except (OSError, asyncpg.PostgresError, TimeoutError):
        return False
    await conn.close()
    return True


async def backend_urls(names: list[str]) -> dict[str, str]:
    """sqlite -> a marker; postgresql -> the local server, or a throwaway cluster we start."""
    urls: dict[str, str] = {}
    for name in names:
        if name == "sqlite":
            urls[name] = "sqlite"
        elif await _pg_answers(LOCAL_PG):
            urls[name] = LOCAL_PG
        else:
            out = subprocess.run(["bash", str(REPO / "scripts/pg-test-cluster.sh"), "start"],
                                 check=True, capture_output=True, text=True).stdout.split()
            urls[name] = out[0]
    return urls


async def fresh_database(url: str) -> str:
    if url == "sqlite":
        return f"sqlite:///{tempfile.mkdtemp(prefix='cloudd-bench-db-')}/cloudd.db"
    name = "cloudd_bench_" + uuid.uuid4().hex[:10]
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return url.rsplit("/", 1)[0] + "/" + name


async def fill_servers(url: str, count: int) -> None:
    """`count` ACTIVE servers of the admin project, inserted directly (the list is measured)."""
    database = await dbmod.connect(url)
    try:
        project = await database.fetchval("SELECT id FROM projects WHERE name = 'admin'")
        have = await database.fetchval("SELECT COUNT(*) FROM instances WHERE deleted = 0")
        flavor = json.dumps({"flavorid": "1", "name": "m1.tiny", "memory_mb": 512, "vcpus": 1,
                             "root_gb": 1, "ephemeral_gb": 0, "swap": 0, "extra_specs": {}})
        now = time.time()
        async with database.transaction() as tx:
            for index in range(int(have), count):
                await tx.execute(
                    "INSERT INTO instances (uuid, name, hostname, project_id, user_id, image_ref,"
                    " flavor, vcpus, memory_mb, root_gb, vm_state, power_state, host, node,"
                    " created_at, updated_at, launched_at) VALUES ($1, $2, $2, $3, 'bench', $4, $5,"
                    " 1, 512, 1, 'active', 1, 'bench', 'bench-0', $6, $6, $6)",
                    str(uuid.uuid4()), f"listed-{index}", project, str(uuid.uuid4()), flavor, now)
    finally:
        await database.close()


async def scheduler_rate(url: str, hosts: int, seconds: float = 3.0) -> float:
    """Decisions per second of the scheduler service: read hosts, filter, weigh, claim in SQL."""
    cfg = CloudConfig()
    cfg.database.connection = url
    host = ServiceHost(cfg)
    host.add(DatabaseService(host))
    scheduler = SchedulerService(host)
    host.add(scheduler)
    await host.start()
    try:
        await _insert_hosts(host.get(DatabaseService).db, hosts)
        spec = RequestSpec(flavor=FlavorSpec(memory_mb=512, vcpus=1, root_gb=1))
        decisions, started = 0, time.monotonic()
        while time.monotonic() - started < seconds:
            await scheduler.select_and_claim(spec)
            decisions += 1
        return decisions / (time.monotonic() - started)
    finally:
        await host.stop()


async def _insert_hosts(database: Any, count: int) -> None:
    now = time.time()
    async with database.transaction() as tx:
        for index in range(count):
            row = await tx.fetchrow(
                'INSERT INTO services (uuid, host, "binary", topic, created_at, updated_at,'
                " last_seen_up) VALUES ($1, $2, 'cloudd-compute', 'compute', $3, $3, $3)"
                " RETURNING id", str(uuid.uuid4()), f"h{index}", now + 3600)
            await tx.execute(
                "INSERT INTO compute_nodes (uuid, service_id, host, hypervisor_hostname,"
                " hypervisor_type, vcpus, memory_mb, local_gb, created_at, supported_instances)"
                " VALUES ($1, $2, $3, $3, 'fake', 64, 262144, 10000, $4, '[]')",
                str(uuid.uuid4()), row["id"], f"h{index}", now)

