"""What the soak run (`make soak`) samples of a running BenchCloud: each process's PSS, open file
descriptors, asyncio tasks, GC-tracked objects and allocator blocks, and the database's rows.

The controller's own counts come from its /metrics (`cloudd_asyncio_tasks`, `cloudd_gc_objects`,
`cloudd_python_allocated_blocks`), the agent's from its `compute.host_health` report (GET
/healthz/hosts); PSS and descriptors from /proc; rows straight from the database, split into
live and soft-deleted rows for the tables that keep deleted rows as Nova does.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import aiohttp
from cloud import BenchCloud, memory_of

from cloudd import db as dbmod


@dataclass
class ProcessSample:
    pss_mib: float
    anon_mib: float
    fds: int
    asyncio_tasks: int
    gc_objects: int
    allocated_blocks: int


@dataclass
class Counts:
    """What a process says of itself: its asyncio tasks, GC-tracked objects and the blocks
    Python's allocator holds."""
    asyncio_tasks: int
    gc_objects: int
    allocated_blocks: int


@dataclass
class Sample:
    cycles: int
    seconds: float
    controller: ProcessSample
    agent: ProcessSample
    # table -> rows; a table with a `deleted` column counts its live rows here and its
    # soft-deleted ones under "<table> (deleted)".
    rows: dict[str, int] = field(default_factory=dict)


def open_fds(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return -1


GAUGES = {"cloudd_asyncio_tasks": "asyncio_tasks", "cloudd_gc_objects": "gc_objects",
          "cloudd_python_allocated_blocks": "allocated_blocks"}


async def ask_controller(session: aiohttp.ClientSession, cloud: BenchCloud) -> Counts:
    """The controller's counts from its /metrics (the scrape's own handler task is one of the
    tasks, in every sample alike)."""
    async with session.get(cloud.base + "/metrics") as resp:
        text = await resp.text()
    values = {}
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name in GAUGES:
            values[GAUGES[name]] = int(float(value))
    return Counts(**values)


async def ask_agent(session: aiohttp.ClientSession, cloud: BenchCloud) -> Counts:
    """The agent process's counts. Every fake host of the agent answers
    for the same process at once, so each report also counts the other hosts' requests in
    flight: the smallest count is the one least inflated by the asking itself."""
    async with session.get(cloud.base + "/healthz/hosts") as resp:
        resp.raise_for_status()
        reports = (await resp.json())["hosts"]
    counted = [Counts(**{key: r[key] for key in GAUGES.values()}) for r in reports
               if r.get("asyncio_tasks") is not None]
    if not counted:
        raise RuntimeError(f"the agent reported no process counts: {reports}")
    return min(counted, key=lambda c: c.asyncio_tasks)


async def table_rows(url: str) -> dict[str, int]:
    database = await dbmod.connect(url, pool_size=1)
    try:
        if database.dialect == "sqlite":
            tables = [r["name"] for r in await database.fetch(
                "SELECT name FROM sqlite_master WHERE type = 'table'"
                " AND name NOT LIKE 'sqlite_%' ORDER BY name")]
            with_deleted = {t for t in tables if any(
                c["name"] == "deleted" for c in await database.fetch(
                    f"SELECT name FROM pragma_table_info('{t}')"))}
        else:
            tables = [r["table_name"] for r in await database.fetch(
                "SELECT table_name FROM information_schema.tables"
                " WHERE table_schema = 'public' ORDER BY table_name")]
            with_deleted = {r["table_name"] for r in await database.fetch(
                "SELECT table_name FROM information_schema.columns"
                " WHERE table_schema = 'public' AND column_name = 'deleted'")}
        rows: dict[str, int] = {}
        for table in tables:
            if table in with_deleted:
                rows[table] = int(await database.fetchval(
                    f'SELECT COUNT(*) FROM "{table}" WHERE deleted = 0'))
                rows[f"{table} (deleted)"] = int(await database.fetchval(
                    f'SELECT COUNT(*) FROM "{table}" WHERE deleted != 0'))
            else:
                rows[table] = int(await database.fetchval(f'SELECT COUNT(*) FROM "{table}"'))
        return rows
    finally:
        await database.close()


async def sample(session: aiohttp.ClientSession, cloud: BenchCloud, cycles: int,
                 started: float) -> Sample:
    ctl_counts = await ask_controller(session, cloud)
    agent_counts = await ask_agent(session, cloud)
    return Sample(cycles=cycles, seconds=time.monotonic() - started,
                  controller=process_sample(cloud.procs["controller"].pid, ctl_counts),
                  agent=process_sample(cloud.procs["agent"].pid, agent_counts),
                  rows=await table_rows(cloud.db_url))


def process_sample(pid: int, counts: Counts) -> ProcessSample:
    memory = memory_of(pid)
    return ProcessSample(memory.get("pss", 0.0), memory.get("anonymous", 0.0), open_fds(pid),
                         **asdict(counts))


def process_log(path: Path) -> str:
    """The last lines of a process's log, for a failure's report."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-20:])
    except OSError:
        return ""
