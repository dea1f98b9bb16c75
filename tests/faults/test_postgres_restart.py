"""PostgreSQL stopped and started again under a controller and an agent doing boots: requests
during the outage get a Nova-shaped 503 (never a 500), and afterwards the same controller
process carries on. Only a throwaway cluster of this test is restarted, never a system one."""

from __future__ import annotations

import asyncio
import subprocess
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import asyncpg
import pytest
from harness.cloud import wait_for
from harness.config import free_port
from harness.processes import Processes, assert_consistent, prepare_database

from cloudd.db import connect

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "pg-test-cluster.sh"
OUTAGE_S = 2.0


class Cluster:
    def __init__(self) -> None:
        self.port = free_port()
        started = subprocess.run([str(SCRIPT), "start", str(self.port)], capture_output=True,
                                 text=True, timeout=300, check=False)
        if started.returncode != 0:
            pytest.fail(f"cannot start a throwaway PostgreSQL: {started.stderr}")
        self.url, directory = started.stdout.split()
        self.dir = Path(directory)
        self.pg_ctl = str(sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))[-1])
        assert self.port != 5432  # never the system cluster

    def _pg_ctl(self, *args: str) -> None:
        owner = ["runuser", "-u", "postgres", "--"] if self.dir.stat().st_uid != 0 else []
        subprocess.run([*owner, self.pg_ctl, "-D", str(self.dir / "data"), "-w", *args],
                       check=True, capture_output=True, timeout=60)

    async def stop(self) -> None:
        await asyncio.to_thread(self._pg_ctl, "stop", "-m", "fast")

    async def start(self) -> None:
        # The options pg-test-cluster.sh starts it with (a restart would reuse them).
        options = (f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off"
                   " -c synchronous_commit=off")
        await asyncio.to_thread(self._pg_ctl, "-l", str(self.dir / "server.log"), "-o", options,
                                "start")

    def destroy(self) -> None:
        subprocess.run([str(SCRIPT), "stop", str(self.dir)], check=False, timeout=60)


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    pg = Cluster()
    try:
        yield pg
    finally:
        pg.destroy()



@pytest.mark.slow
@pytest.mark.postgres
async def test_postgres_restart_under_load(cluster: Cluster, tmp_path: Path) -> None:
    admin = await asyncpg.connect(cluster.url)
    await admin.execute('CREATE DATABASE "cloudd"')
    await admin.close()
    async with aiohttp.ClientSession() as session:
        procs = Processes(tmp_path, cluster.url.rsplit("/", 1)[0] + "/cloudd", free_port(),
                          free_port(), session)
        procs.join_token = await prepare_database(procs.db_url, procs.config, tmp_path)
        try:
            await run_load_through_an_outage(procs, cluster)
        finally:
            procs.stop_all()
            procs.kill(procs.agent)
            procs.kill(procs.controller)


async def run_load_through_an_outage(procs: Processes, cluster: Cluster) -> None:
    await procs.start_cloud("spawn=0.2")

    statuses: Counter[int] = Counter()
    bodies: list[object] = []
    accepted: list[str] = []
    loading = True

    async def load(worker: int) -> None:  # boots and lists, as fast as they are answered
        index = 0
        while loading:
            index += 1
            status, body = await procs.boot(f"w{worker}-{index}")
            statuses[status] += 1
            if status == 202:
                accepted.append(body["server"]["id"])
            else:
                bodies.append(body)
            status, body = await procs.call("GET", "/compute/v2.1/servers/detail")
            statuses[status] += 1
            await asyncio.sleep(0.05)

    workers = [asyncio.create_task(load(n)) for n in range(4)]
    await asyncio.sleep(1.0)
    await cluster.stop()
    await asyncio.sleep(OUTAGE_S)
    during = Counter(statuses)
    await cluster.start()
    await asyncio.sleep(2.0)
    loading = False
    await asyncio.gather(*workers)

    assert procs.controller is not None and procs.controller.poll() is None
    assert set(statuses) <= {200, 202, 503}, (statuses, bodies[:3])
    assert during[503] > 0, during  # the outage was seen
    assert all("serviceUnavailable" in body for body in bodies if isinstance(body, dict)), bodies
    # The same controller process serves again: a new server builds.
    status, body = await procs.boot("after-the-outage")
    assert status == 202, body
    db = await connect(procs.db_url)
    try:
        async def settled() -> bool:
            return not await db.fetchval(
                "SELECT COUNT(*) FROM instances WHERE deleted = 0"
                " AND (vm_state = 'building' OR task_state IS NOT NULL)")

        await wait_for(settled, 30, "every build to settle")

        async def consistent() -> bool:  # claims that failed half-way are healed soon after
            try:
                await assert_consistent(db)
            except AssertionError:
                return False
            return True

        await wait_for(consistent, 10, "node usage to match the instances")
        rows = await assert_consistent(db)
        assert set(accepted) <= {row["uuid"] for row in rows}
        by_id = {row["uuid"]: row["vm_state"] for row in rows}
        assert by_id[body["server"]["id"]] == "active"
    finally:
        await db.close()
