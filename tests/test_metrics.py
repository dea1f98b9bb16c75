"""GET /metrics on the API port: the counters move when a server is booted through the REST API."""

from __future__ import annotations

import asyncio
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
from harness.api import BOOT_IMAGE, cloud  # noqa: F401  # controller+agent fixture
from harness.api import ApiCloud as Cloud
from harness.aws import S3Cloud, get_object, run, s3cloud  # noqa: F401  # S3 fixture
from harness.console import point_console_at, qemu_vnc  # noqa: F401  # QEMU's VNC server
from prometheus_client.parser import text_string_to_metric_families

from cloudd.api.metrics import _pool_use
from cloudd.db import Database

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


async def scrape(cloud: Cloud) -> Samples:  # noqa: F811
    return await scrape_url(cloud.session, cloud.base + "/metrics")


async def scrape_url(session: aiohttp.ClientSession, url: str) -> Samples:
    async with session.get(url) as resp:
        assert resp.status == 200
        assert resp.content_type == "text/plain"
        text = await resp.text()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def total(samples: Samples, name: str, **labels: str) -> float:
    """Sum of `name` over the series whose labels include `labels`."""
    return sum(v for (n, lab), v in samples.items()
               if n == name and set(labels.items()) <= set(lab))


async def wait_for_status(cloud: Cloud, server_id: str, status: str) -> None:  # noqa: F811
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        _, body, _ = await cloud.call("GET", f"/compute/v2.1/servers/{server_id}")
        if body["server"]["status"] == status:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{server_id} never reached {status}")


async def boot(cloud: Cloud, flavor: str) -> str:  # noqa: F811
    code, body, _ = await cloud.call("POST", "/compute/v2.1/servers", json={"server": {
        "name": "m", "imageRef": BOOT_IMAGE, "flavorRef": flavor}})
    assert code == 202, body
    return str(body["server"]["id"])


async def test_counters_move_when_a_server_boots(cloud: Cloud) -> None:  # noqa: F811
    before = await scrape(cloud)
    assert total(before, "cloudd_agents_connected") == 1
    assert total(before, "cloudd_services", state="up") == 1
    # The process's own counts, read at scrape time (the soak run watches them stay flat).
    assert total(before, "cloudd_asyncio_tasks") > 0 and total(before, "cloudd_gc_objects") > 0
    assert total(before, "cloudd_python_allocated_blocks") > 0

    server_id = await boot(cloud, "1")
    await wait_for_status(cloud, server_id, "ACTIVE")
    after = await scrape(cloud)

    route = {"route": "/compute/v2.1/servers", "method": "POST"}
    assert total(after, "cloudd_api_requests_total", status="202", **route) == \
        total(before, "cloudd_api_requests_total", status="202", **route) + 1
    assert total(after, "cloudd_api_request_seconds_count", **route) == \
        total(before, "cloudd_api_request_seconds_count", **route) + 1
    # Server ids never become labels: one route template for every server.
    assert total(after, "cloudd_api_requests_total",
                 route="/compute/v2.1/servers/{server_id}", method="GET") >= 1
    assert not any(server_id in dict(lab).get("route", "") for _, lab in after)
    assert total(after, "cloudd_rpc_calls_total", outcome="ok") > \
        total(before, "cloudd_rpc_calls_total", outcome="ok")
    assert total(after, "cloudd_rpc_call_seconds_count") > total(before, "cloudd_rpc_call_seconds_count")
    assert total(after, "cloudd_scheduler_decisions_total") == \
        total(before, "cloudd_scheduler_decisions_total") + 1
    assert total(after, "cloudd_servers", vm_state="active") == 1


async def test_no_valid_host_is_counted(cloud: Cloud) -> None:  # noqa: F811
    # Unlimited RAM quota (the quotas table), so the request reaches the scheduler.
    await cloud.db.execute("INSERT INTO quotas (project_id, resource, hard_limit, updated_at)"
                           " VALUES ($1, 'ram', -1, 0)", cloud.admin_project)
    code, _, _ = await cloud.call("POST", "/compute/v2.1/flavors", json={"flavor": {
        "name": "huge", "id": "huge", "ram": 10**7, "vcpus": 1, "disk": 0}})
    assert code == 200
    before = await scrape(cloud)
    server_id = await boot(cloud, "huge")
    await wait_for_status(cloud, server_id, "ERROR")
    after = await scrape(cloud)
    assert total(after, "cloudd_scheduler_no_valid_host_total") > \
        total(before, "cloudd_scheduler_no_valid_host_total")
    assert total(after, "cloudd_servers", vm_state="error") == 1


async def test_object_store_bytes_are_counted(s3cloud: S3Cloud) -> None:  # noqa: F811
    url = s3cloud.base + "/metrics"
    s3 = s3cloud.client(await s3cloud.credentials())
    await run(s3.create_bucket, Bucket="metered")
    before = await scrape_url(s3cloud.session, url)
    assert total(before, "cloudd_objectstore_stored_bytes") == 0
    data = bytes(range(256)) * 40  # 10240 bytes
    await run(s3.put_object, Bucket="metered", Key="a.bin", Body=data)
    body, _ = await get_object(s3, Bucket="metered", Key="a.bin")
    assert body == data
    await get_object(s3, Bucket="metered", Key="a.bin", Range="bytes=0-99")
    after = await scrape_url(s3cloud.session, url)
    # Other tests of this process may add to the counters meanwhile, never take away.
    assert total(after, "cloudd_objectstore_bytes_total", direction="in") >= \
        total(before, "cloudd_objectstore_bytes_total", direction="in") + len(data)
    assert total(after, "cloudd_objectstore_bytes_total", direction="out") >= \
        total(before, "cloudd_objectstore_bytes_total", direction="out") + len(data) + 100
    # What is stored is read from this cloud's database: exact.
    assert total(after, "cloudd_objectstore_stored_bytes") == len(data)
    assert total(after, "cloudd_objectstore_objects") == 1


async def test_console_sessions_are_counted(cloud: Cloud, qemu_vnc: int) -> None:  # noqa: F811
    server_id = await boot(cloud, "1")
    await wait_for_status(cloud, server_id, "ACTIVE")
    code, body, _ = await cloud.call("POST", f"/compute/v2.1/servers/{server_id}/action",
                                     json={"os-getVNCConsole": {"type": "novnc"}})
    assert code == 200, body
    parts = urlsplit(body["console"]["url"])
    token = parse_qs(parse_qs(parts.query)["path"][0].lstrip("?"))["token"][0]
    await point_console_at(cloud.db, server_id, qemu_vnc)
    before = await scrape(cloud)
    async with cloud.session.ws_connect(f"http://127.0.0.1:{parts.port}/?token={token}",
                                        protocols=("binary",)) as ws:
        assert (await ws.receive_bytes(timeout=10)).startswith(b"RFB ")
        during = await scrape(cloud)
    assert total(during, "cloudd_console_sessions_total") == \
        total(before, "cloudd_console_sessions_total") + 1
    assert total(during, "cloudd_console_sessions_open") == \
        total(before, "cloudd_console_sessions_open") + 1
    deadline = time.monotonic() + 10
    while total(await scrape(cloud), "cloudd_console_sessions_open") != \
            total(before, "cloudd_console_sessions_open"):
        assert time.monotonic() < deadline, "the closed session is still counted as open"
        await asyncio.sleep(0.05)


async def test_database_pool_use(db: Database) -> None:
    use: dict[str, Any] = _pool_use(db)
    if db.url.startswith("sqlite"):  # one connection, no pool: nothing to report
        assert use == {}
    else:
        assert use["size"] >= 1 and 0 <= use["idle"] <= use["size"]
