"""Quotas: atomic enforcement on create (SQLite and PostgreSQL), quota sets, limits, key pairs,
resize deltas."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from harness.api import ApiCloud as Cloud
from harness.api import running_cloud, wait_status

from cloudd.core import ServiceHost

S = "/compute/v2.1/servers"
Q = "/compute/v2.1/os-quota-sets"
TINY_IMAGE = "tiny"  # the public image boot_image() makes in each cloud
PUBKEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB7n8M+yJ1fyoq8AuP0+lqgnQ6hEW7sYdw8Q4Ai8hS6E q@t"


@asynccontextmanager
async def start_cloud(db_url: str, tmp_path: Path,
                      **api: str) -> AsyncIterator[tuple[Cloud, ServiceHost]]:
    """The conftest's cloud (controller + agent "ctl") on any backend, with its ServiceHost."""
    async with running_cloud(tmp_path, boot_image=False, database={"connection": db_url},
                             api=api) as cloud:
        assert cloud.host is not None
        yield cloud, cloud.host


@pytest.fixture
async def backend_cloud(db_url: str, tmp_path: Path) -> AsyncIterator[Cloud]:
    """The conftest's cloud, on each database backend."""
    async with start_cloud(db_url, tmp_path) as (cloud, _):
        yield cloud


async def boot_image(cloud: Cloud) -> str:
    """A small active public image of this cloud, made through the Image v2 API on first use.

    Looked up in the cloud itself, not remembered by the test process: each test has a cloud
    of its own, and a later one may listen on a port an earlier one freed, so a cache keyed by
    URL handed it an image of a cloud that no longer exists (POST /servers: 400)."""
    code, body, _ = await cloud.call("GET", f"/image/v2/images?name={TINY_IMAGE}&status=active")
    assert code == 200, body
    if body["images"]:
        return str(body["images"][0]["id"])
    code, body, _ = await cloud.call("POST", "/image/v2/images", json={
        "name": TINY_IMAGE, "disk_format": "raw", "container_format": "bare",
        "visibility": "public"})
    assert code == 201, body
    code, _, _ = await cloud.call("PUT", f"/image/v2/images/{body['id']}/file",
                                  data=b"\0" * 1024,
                                  headers={"Content-Type": "application/octet-stream"})
    assert code == 204
    return str(body["id"])


async def server_request(cloud: Cloud, name: str = "vm", flavor: str = "1",
                         **extra: Any) -> dict[str, Any]:
    return {"server": {"name": name, "imageRef": await boot_image(cloud), "flavorRef": flavor,
                       **extra}}


async def test_concurrent_creates_never_exceed_the_quota(backend_cloud: Cloud) -> None:
    cloud = backend_cloud
    token, project_id = await cloud.user_token("race", ("member", "reader"))
    code, _, _ = await cloud.call("PUT", f"{Q}/{project_id}",
                                  json={"quota_set": {"instances": 10}})
    assert code == 200
    bodies = [await server_request(cloud, f"vm{i}") for i in range(20)]
    results = await asyncio.gather(*(cloud.call("POST", S, token=token, json=body)
                                     for body in bodies))
    codes = sorted(code for code, _, _ in results)
    assert codes == [202] * 10 + [403] * 10
    refused = [body for code, body, _ in results if code == 403]
    assert refused[0] == {"forbidden": {"code": 403, "message": (
        "Quota exceeded for instances: Requested 1, but already used 10 of 10 instances")}}
    assert await cloud.db.fetchval("SELECT COUNT(*) FROM instances WHERE project_id = $1",
                                   project_id) == 10


async def test_quota_set_update_show_detail_and_delete(cloud: Cloud) -> None:
    member, project_id = await cloud.user_token("qp", ("member", "reader"))
    code, body, _ = await cloud.call("PUT", f"{Q}/{project_id}", token=member,
                                     json={"quota_set": {"instances": 1}})
    assert code == 403 and "forbidden" in body  # quotas:update is admin-only
    code, body, _ = await cloud.call("PUT", f"{Q}/{project_id}",
                                     json={"quota_set": {"instances": 1, "cores": -1}})
    assert code == 200 and "id" not in body["quota_set"]
    assert body["quota_set"]["instances"] == 1 and body["quota_set"]["cores"] == -1
    code, body, _ = await cloud.call("GET", f"{Q}/{project_id}", token=member)
    assert code == 200 and body["quota_set"]["instances"] == 1
    assert body["quota_set"]["id"] == project_id and body["quota_set"]["ram"] == 51200

    code, body, _ = await cloud.call("POST", S, token=member,
                                     json=await server_request(cloud, "a", "2"))
    assert code == 202
    code, body, _ = await cloud.call("POST", S, token=member,
                                     json=await server_request(cloud, "b"))
    assert code == 403
    assert body["forbidden"]["message"] == (
        "Quota exceeded for instances: Requested 1, but already used 1 of 1 instances")

    code, body, _ = await cloud.call("GET", f"{Q}/{project_id}/detail", token=member)
    assert body["quota_set"]["instances"] == {"limit": 1, "in_use": 1, "reserved": 0}
    assert body["quota_set"]["ram"] == {"limit": 51200, "in_use": 2048, "reserved": 0}
    code, body, _ = await cloud.call("GET", "/compute/v2.1/limits", token=member)
    absolute = body["limits"]["absolute"]
    assert (absolute["maxTotalInstances"], absolute["totalInstancesUsed"]) == (1, 1)
    assert (absolute["totalCoresUsed"], absolute["totalRAMUsed"]) == (1, 2048)
    assert absolute["maxTotalCores"] == -1

    # Below what is in use: refused unless forced (Nova's rule).
    code, body, _ = await cloud.call("PUT", f"{Q}/{project_id}",
                                     json={"quota_set": {"ram": 1024}})
    assert code == 400 and "must be greater than or equal to already used" in \
        body["badRequest"]["message"]
    code, _, _ = await cloud.call("PUT", f"{Q}/{project_id}",
                                  json={"quota_set": {"ram": 1024, "force": True}})
    assert code == 200
    code, body, _ = await cloud.call("DELETE", f"{Q}/{project_id}")
    assert code == 202
    code, body, _ = await cloud.call("GET", f"{Q}/{project_id}", token=member)
    assert (body["quota_set"]["instances"], body["quota_set"]["ram"]) == (10, 51200)


@pytest.mark.parametrize("quota_set", [{"instances": "ten"}, {"instances": -2}, {"bogus": 1},
                                       {"instances": True}, []])
async def test_quota_set_validation(cloud: Cloud, quota_set: Any) -> None:
    code, body, _ = await cloud.call("PUT", f"{Q}/{cloud.admin_project}",
                                     json={"quota_set": quota_set})
    assert code == 400 and "badRequest" in body


async def test_network_keys_are_refused_from_2_36(cloud: Cloud) -> None:
    code, _, _ = await cloud.call("PUT", f"{Q}/{cloud.admin_project}",
                                  json={"quota_set": {"floating_ips": 5}})
    assert code == 200
    code, body, _ = await cloud.call("PUT", f"{Q}/{cloud.admin_project}", version="2.36",
                                     json={"quota_set": {"floating_ips": 5}})
    assert code == 400, body


async def test_key_pair_quota(cloud: Cloud) -> None:
    token, project_id = await cloud.user_token("kp", ("member", "reader"))
    await cloud.call("PUT", f"{Q}/{project_id}", json={"quota_set": {"key_pairs": 1}})
    code, _, _ = await cloud.call("POST", "/compute/v2.1/os-keypairs", token=token,
                                  json={"keypair": {"name": "k1", "public_key": PUBKEY}})
    assert code == 200
    code, body, _ = await cloud.call("POST", "/compute/v2.1/os-keypairs", token=token,
                                     json={"keypair": {"name": "k2", "public_key": PUBKEY}})
    assert code == 403
    assert body == {"forbidden": {"code": 403, "message": "Quota exceeded, too many key pairs."}}


async def test_resize_needs_room_for_the_delta(cloud: Cloud) -> None:
    token, project_id = await cloud.user_token("rz", ("member", "reader"))
    await cloud.call("PUT", f"{Q}/{project_id}", json={"quota_set": {"cores": 2}})
    code, body, _ = await cloud.call("POST", S, token=token,
                                     json=await server_request(cloud, "big", "1"))
    assert code == 202
    server_id = body["server"]["id"]
    await wait_status(cloud, server_id, "ACTIVE")
    code, body, _ = await cloud.call("POST", f"{S}/{server_id}/action", token=token,
                                     json={"resize": {"flavorRef": "4"}})  # 1 -> 4 vcpus
    assert code == 403
    assert body["forbidden"]["message"] == (
        "Quota exceeded for cores: Requested 3, but already used 1 of 2 cores")
    code, body, _ = await cloud.call("POST", f"{S}/{server_id}/action", token=token,
                                     json={"resize": {"flavorRef": "2"}})  # 1 -> 1 vcpu
    assert code == 202, body


async def test_multi_create_is_cut_to_what_fits(cloud: Cloud) -> None:
    token, project_id = await cloud.user_token("mc", ("member", "reader"))
    await cloud.call("PUT", f"{Q}/{project_id}", json={"quota_set": {"instances": 3}})
    code, body, _ = await cloud.call("POST", S, token=token,
                                     json=await server_request(cloud, "many", min_count=4,
                                                               max_count=5))
    assert code == 403
    assert body["forbidden"]["message"] == (
        "Quota exceeded for instances: Requested 4, but already used 0 of 3 instances")
    code, body, _ = await cloud.call("POST", S, token=token,
                                     json=await server_request(cloud, "many", min_count=2,
                                                               max_count=2**62))
    assert code == 202
    code, body, _ = await cloud.call("GET", S, token=token)
    assert len(body["servers"]) == 3
