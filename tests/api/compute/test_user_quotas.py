"""Per-user quotas (Nova's os-quota-sets ?user_id=): a teacher's class shares one project, and
each student gets limits of their own within it. A user's limit is at most the project's and,
unless forced, at least what the user uses; creates, resizes and server groups count the
user's own usage against it; another user's quotas are an admin's to read."""

from __future__ import annotations

import asyncio
from typing import Any

from harness.api import BOOT_IMAGE
from harness.api import ApiCloud as Cloud

S = "/compute/v2.1/servers"
Q = "/compute/v2.1/os-quota-sets"


async def student(cloud: Cloud, project: str) -> tuple[str, str, str]:
    """A new member of `project`: (token, user id, project id)."""
    token, project_id = await cloud.user_token(project, ("member", "reader"))
    code, body, _ = await cloud.call("GET", "/identity/v3/auth/tokens",
                                     headers={"X-Subject-Token": token})
    assert code == 200, body
    return token, str(body["token"]["user"]["id"]), project_id


async def create(cloud: Cloud, token: str, name: str) -> tuple[int, Any]:
    code, body, _ = await cloud.call("POST", S, token=token, json={"server": {
        "name": name, "imageRef": BOOT_IMAGE, "flavorRef": "1"}})
    return code, body


async def test_each_student_has_limits_of_their_own(cloud: Cloud) -> None:
    alice, alice_id, project_id = await student(cloud, "class-2026")
    bob, bob_id, _ = await student(cloud, "class-2026")
    code, body, _ = await cloud.call("PUT", f"{Q}/{project_id}?user_id={alice_id}",
                                     json={"quota_set": {"instances": 1}})
    assert code == 200 and body["quota_set"]["instances"] == 1, body
    code, body, _ = await cloud.call("GET", f"{Q}/{project_id}?user_id={alice_id}", token=alice)
    assert code == 200 and body["quota_set"]["instances"] == 1
    code, body, _ = await cloud.call("GET", f"{Q}/{project_id}", token=alice)
    assert body["quota_set"]["instances"] == 10  # the project's own limit is unchanged
    code, body, _ = await cloud.call("GET", f"{Q}/{project_id}?user_id={alice_id}", token=bob)
    assert code == 403 and list(body) == ["forbidden"]

    assert (await create(cloud, alice, "a1"))[0] == 202
    code, body = await create(cloud, alice, "a2")
    assert code == 403 and body["forbidden"]["message"] == (
        "Quota exceeded for instances: Requested 1, but already used 1 of 1 instances")
    for name in ("b1", "b2"):  # bob has the project's limits
        assert (await create(cloud, bob, name))[0] == 202
    code, body, _ = await cloud.call("GET", f"{Q}/{project_id}/detail?user_id={alice_id}",
                                     token=alice)
    assert body["quota_set"]["instances"] == {"limit": 1, "in_use": 1, "reserved": 0}
    code, body, _ = await cloud.call("GET", f"{Q}/{project_id}/detail?user_id={bob_id}")
    assert body["quota_set"]["instances"]["in_use"] == 2  # an admin may look at anyone's
    code, body, _ = await cloud.call("GET", f"{Q}/{project_id}/detail", token=alice)
    assert body["quota_set"]["instances"] == {"limit": 10, "in_use": 3, "reserved": 0}

    code, _, _ = await cloud.call("DELETE", f"{Q}/{project_id}?user_id={alice_id}")
    assert code == 202
    code, body, _ = await cloud.call("GET", f"{Q}/{project_id}?user_id={alice_id}", token=alice)
    assert body["quota_set"]["instances"] == 10
    assert (await create(cloud, alice, "a2"))[0] == 202


async def test_user_limits_stay_within_the_project_and_its_use(cloud: Cloud) -> None:
    alice, alice_id, project_id = await student(cloud, "class-limits")
    assert (await create(cloud, alice, "a1"))[0] == 202
    url = f"{Q}/{project_id}?user_id={alice_id}"
    for quota_set, why in (({"instances": 11}, "less than or equal to 10"),
                           ({"instances": -1}, "less than or equal to 10"),
                           ({"instances": 0}, "greater than or equal to already used")):
        code, body, _ = await cloud.call("PUT", url, json={"quota_set": quota_set})
        assert code == 400 and why in body["badRequest"]["message"], (quota_set, body)
    code, body, _ = await cloud.call("PUT", url, json={"quota_set": {"instances": 0,
                                                                     "force": True}})
    assert code == 200 and body["quota_set"]["instances"] == 0
    code, body, _ = await cloud.call("PUT", url, token=alice,
                                     json={"quota_set": {"instances": 5}})
    assert code == 403  # students do not set quotas
    code, body = await create(cloud, alice, "a2")
    assert code == 403
    code, body, _ = await cloud.call("PUT", f"{Q}/{project_id}?user_id={'u' * 256}",
                                     json={"quota_set": {"instances": 1}})
    assert code == 400


async def test_resize_and_server_groups_count_the_users_share(cloud: Cloud) -> None:
    alice, alice_id, project_id = await student(cloud, "class-resize")
    code, _, _ = await cloud.call("PUT", f"{Q}/{project_id}?user_id={alice_id}",
                                  json={"quota_set": {"cores": 1, "server_groups": 0}})
    assert code == 200
    code, body = await create(cloud, alice, "small")
    assert code == 202, body
    server_id = body["server"]["id"]
    for _ in range(200):
        _, shown, _ = await cloud.call("GET", f"{S}/{server_id}", token=alice)
        if shown["server"]["status"] == "ACTIVE":
            break
        await asyncio.sleep(0.05)
    code, body, _ = await cloud.call("POST", f"{S}/{server_id}/action", token=alice,
                                     json={"resize": {"flavorRef": "3"}})  # 2 vCPUs
    assert code == 403 and "cores" in body["forbidden"]["message"], body
    code, body, _ = await cloud.call("POST", "/compute/v2.1/os-server-groups", token=alice,
                                     json={"server_group": {"name": "g",
                                                            "policies": ["affinity"]}})
    assert code == 403, body
