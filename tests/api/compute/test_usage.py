"""os-simple-tenant-usage computed from the instances that ran in the period."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

from harness.api import ApiCloud as Cloud
from harness.api import wait_status

from .test_quotas import server_request

U = "/compute/v2.1/os-simple-tenant-usage"


def stamp(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")


async def test_usage_of_running_and_deleted_servers(cloud: Cloud) -> None:
    token, project_id = await cloud.user_token("use", ("member", "reader"))
    start = time.time() - 3600
    ids = []
    for name, flavor in (("u1", "1"), ("u2", "2")):
        code, body, _ = await cloud.call("POST", "/compute/v2.1/servers", token=token,
                                         json=await server_request(cloud, name, flavor))
        assert code == 202, body
        ids.append(body["server"]["id"])
        await wait_status(cloud, ids[-1], "ACTIVE")
    await cloud.call("DELETE", f"/compute/v2.1/servers/{ids[1]}", token=token)
    await wait_status(cloud, ids[1], "DELETED")
    await asyncio.sleep(0.05)
    window = f"start={stamp(start)}&end={stamp(time.time() + 3600)}"

    code, body, _ = await cloud.call("GET", f"{U}/{project_id}?{window}", token=token)
    assert code == 200, body
    usage = body["tenant_usage"]
    assert usage["tenant_id"] == project_id and usage["start"] == stamp(start)
    by_name = {s["name"]: s for s in usage["server_usages"]}
    assert set(by_name) == {"u1", "u2"}
    assert by_name["u1"]["state"] == "active" and by_name["u1"]["ended_at"] is None
    assert by_name["u2"]["state"] == "terminated" and by_name["u2"]["ended_at"] is not None
    assert (by_name["u2"]["memory_mb"], by_name["u2"]["local_gb"], by_name["u2"]["flavor"]) == \
        (2048, 20, "m1.small")
    assert set(by_name["u1"]) == {"instance_id", "name", "hours", "memory_mb", "local_gb",
                                  "vcpus", "tenant_id", "flavor", "started_at", "ended_at",
                                  "state", "uptime"}
    # u1 still runs: its hours grow up to the period's end, which is in the future.
    assert 0.9 < usage["total_hours"] < 1.1
    assert abs(usage["total_memory_mb_usage"] - 512 * by_name["u1"]["hours"]
               - 2048 * by_name["u2"]["hours"]) < 1e-6

    code, body, _ = await cloud.call("GET", f"{U}?{window}&detailed=True")  # OSC's `True`
    assert code == 200
    ours = [u for u in body["tenant_usages"] if u["tenant_id"] == project_id]
    assert len(ours) == 1 and len(ours[0]["server_usages"]) == 2
    code, body, _ = await cloud.call("GET", f"{U}?{window}")
    assert "server_usages" not in body["tenant_usages"][0]

    # A period before anything ran is empty.
    code, body, _ = await cloud.call(
        "GET", f"{U}/{project_id}?start=2001-01-01T00:00:00&end=2001-01-02T00:00:00", token=token)
    assert body == {"tenant_usage": {}}


async def test_usage_policy_paging_and_validation(cloud: Cloud) -> None:
    token, project_id = await cloud.user_token("use2", ("member", "reader"))
    code, body, _ = await cloud.call("GET", U, token=token)
    assert code == 403 and "forbidden" in body  # listing every project is for admins
    code, body, _ = await cloud.call("GET", f"{U}/{cloud.admin_project}", token=token)
    assert code == 403
    code, body, _ = await cloud.call("GET", f"{U}?start=2020-01-02T00:00:00&end=2020-01-01T00:00:00")
    assert code == 400 and "start time cannot occur after the end time" in \
        body["badRequest"]["message"]
    code, body, _ = await cloud.call("GET", f"{U}?start=yesterday")
    assert code == 400

    for name in ("p1", "p2"):
        code, body, _ = await cloud.call("POST", "/compute/v2.1/servers", token=token,
                                         json=await server_request(cloud, name))
        await wait_status(cloud, body["server"]["id"], "ACTIVE")
    window = f"start={stamp(time.time() - 60)}&end={stamp(time.time() + 60)}"
    code, body, _ = await cloud.call("GET", f"{U}/{project_id}?{window}&limit=1", token=token,
                                     version="2.40")
    assert len(body["tenant_usage"]["server_usages"]) == 1
    next_href = body["tenant_usage_links"][0]["href"]
    marker = next_href.split("marker=")[1]
    code, body, _ = await cloud.call("GET", f"{U}/{project_id}?{window}&limit=1&marker={marker}",
                                     token=token, version="2.40")
    assert body["tenant_usage"]["server_usages"][0]["instance_id"] != marker
