"""Shelve, shelveOffload and unshelve (Nova's) on a real agent with the fake driver: the disk
goes into a "<name>-shelved" snapshot image, an offload frees the host (its resources, its
guest) while the server keeps its addresses, an unshelve builds it again from that image and
deletes it. Refusals: wrong states, shelveOffload by a non-admin, a zone nobody is in, a zone
for a server that is not offloaded, unshelve bodies Nova's 2.77 schema refuses."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from harness.api import ApiCloud as Cloud
from harness.api import active_server, running_cloud, wait_status

from cloudd.agent.compute.drivers.fake import FakeDriver
from cloudd.agent.service import AgentService
from cloudd.vocab import power_state

S = "/compute/v2.1/servers"
IMAGES = "/image/v2/images"


# Unshelve's availability_zone is 2.77's; services are disabled by uuid from 2.53.
LATER = {"max_microversion": "2.77"}


@pytest.fixture
async def kept_cloud(db_url: str, tmp_path: Path,
                     unreleased_microversions: None) -> AsyncIterator[Cloud]:
    """Shelved servers keep their host until an admin offloads them."""
    async with running_cloud(tmp_path, database={"connection": db_url}, api=LATER,
                             default={"shelved_offload_time": "-1"}) as cloud:
        yield cloud


@pytest.fixture
async def later_cloud(db_url: str, tmp_path: Path,
                      unreleased_microversions: None) -> AsyncIterator[Cloud]:
    async with running_cloud(tmp_path, database={"connection": db_url}, api=LATER) as cloud:
        yield cloud


def driver(cloud: Cloud) -> FakeDriver:
    fake = cloud.host.get(AgentService).driver
    assert isinstance(fake, FakeDriver)
    return fake


async def act(cloud: Cloud, server_id: str, body: dict[str, Any], version: str | None = None,
              token: str | None = None) -> tuple[int, Any]:
    code, answer, _ = await cloud.call("POST", f"{S}/{server_id}/action", json=body,
                                       version=version, token=token)
    return code, answer


async def member(cloud: Cloud) -> str:
    """A member (not admin) of the admin's project, which owns the servers made here."""
    _, body, _ = await cloud.call("GET", f"/identity/v3/projects/{cloud.admin_project}")
    token, _ = await cloud.user_token(body["project"]["name"], ("member", "reader"))
    return token


async def shelved_image(cloud: Cloud, server_id: str) -> dict[str, Any] | None:
    _, body, _ = await cloud.call("GET", IMAGES)
    found = [i for i in body["images"] if i.get("instance_uuid") == server_id]
    return found[0] if found else None


async def no_shelved_image(cloud: Cloud, server_id: str) -> bool:
    """The shelved image is gone (the controller deletes it once the server runs again)."""
    for _ in range(100):
        if await shelved_image(cloud, server_id) is None:
            return True
        await asyncio.sleep(0.05)
    return False


async def used_vcpus(cloud: Cloud) -> int:
    _, body, _ = await cloud.call("GET", "/compute/v2.1/os-hypervisors/detail")
    return sum(h["vcpus_used"] for h in body["hypervisors"])


async def test_shelve_offloads_and_unshelve_builds_it_again(cloud: Cloud) -> None:
    server_id = (await active_server(cloud, "lab"))["id"]
    vcpus = await used_vcpus(cloud)
    assert vcpus >= 1
    code, _ = await act(cloud, server_id, {"shelve": {}})  # tempest's body: any value goes
    assert code == 202
    server = await wait_status(cloud, server_id, "SHELVED_OFFLOADED")
    assert server["OS-EXT-SRV-ATTR:host"] is None and server["OS-EXT-STS:task_state"] is None
    assert server["OS-EXT-STS:power_state"] == power_state.NOSTATE
    assert server_id not in await driver(cloud).list_instances()  # the guest is gone
    assert await used_vcpus(cloud) == vcpus - 1  # and its claim
    image = await shelved_image(cloud, server_id)
    assert image is not None and image["name"] == "lab-shelved" and image["status"] == "active"

    code, _ = await act(cloud, server_id, {"unshelve": None})
    assert code == 202
    server = await wait_status(cloud, server_id, "ACTIVE")
    assert server["OS-EXT-SRV-ATTR:host"] is not None
    assert server_id in await driver(cloud).list_instances()
    assert await used_vcpus(cloud) == vcpus
    assert await no_shelved_image(cloud, server_id)  # deleted once it is running again
    _, body, _ = await cloud.call("GET", f"{S}/{server_id}/os-instance-actions")
    assert [a["action"] for a in body["instanceActions"]][:2] == ["unshelve", "shelve"]


async def test_shelved_server_stays_until_an_admin_offloads(kept_cloud: Cloud) -> None:
    cloud = kept_cloud
    server_id = (await active_server(cloud, "kept"))["id"]
    code, _ = await act(cloud, server_id, {"shelveOffload": None})
    assert code == 409  # not shelved
    await act(cloud, server_id, {"shelve": None})
    server = await wait_status(cloud, server_id, "SHELVED")
    assert server["OS-EXT-SRV-ATTR:host"] is not None
    assert (await driver(cloud).get_info(server_id)).power_state == power_state.SHUTDOWN
    code, _ = await act(cloud, server_id, {"shelve": None})
    assert code == 409  # shelved already

    code, body = await act(cloud, server_id, {"shelveOffload": None}, token=await member(cloud))
    assert code == 403, body  # Nova's policy: admins only
    code, body = await act(cloud, server_id, {"unshelve": {"availability_zone": "nova"}},
                           version="2.77")
    assert code == 409, body  # a zone only for an offloaded server
    code, _ = await act(cloud, server_id, {"shelveOffload": None})
    assert code == 202
    await wait_status(cloud, server_id, "SHELVED_OFFLOADED")
    assert server_id not in await driver(cloud).list_instances()


async def test_unshelve_in_place_powers_it_on(kept_cloud: Cloud) -> None:
    cloud = kept_cloud
    server_id = (await active_server(cloud, "in-place"))["id"]
    await act(cloud, server_id, {"shelve": None})
    host = (await wait_status(cloud, server_id, "SHELVED"))["OS-EXT-SRV-ATTR:host"]
    code, _ = await act(cloud, server_id, {"unshelve": None})
    assert code == 202
    server = await wait_status(cloud, server_id, "ACTIVE")
    assert server["OS-EXT-SRV-ATTR:host"] == host
    assert (await driver(cloud).get_info(server_id)).power_state == power_state.RUNNING
    assert await no_shelved_image(cloud, server_id)


async def test_unshelve_into_a_zone(later_cloud: Cloud) -> None:
    cloud = later_cloud
    server_id = (await active_server(cloud, "zoned"))["id"]
    await act(cloud, server_id, {"shelve": None})
    await wait_status(cloud, server_id, "SHELVED_OFFLOADED")
    for body in ({"availability_zone": "nowhere"}, {"availability_zone": None},
                 {"availability_zone": ""}, {"host": "x"}, {"availability_zone": 5}):
        code, answer = await act(cloud, server_id, {"unshelve": body}, version="2.77")
        assert code == 400 and list(answer) == ["badRequest"], (body, answer)
    code, _ = await act(cloud, server_id, {"unshelve": {"availability_zone": "nova"}},
                        version="2.77")
    assert code == 202
    server = await wait_status(cloud, server_id, "ACTIVE")
    assert server["OS-EXT-AZ:availability_zone"] == "nova"


async def test_refused_bodies_and_states(cloud: Cloud) -> None:
    server_id = (await active_server(cloud, "refusals"))["id"]
    code, _ = await act(cloud, server_id, {"unshelve": None})
    assert code == 409  # not shelved
    other, _ = await cloud.user_token("shelve-other", ("member", "reader"))
    code, _ = await act(cloud, server_id, {"shelve": None}, token=other)
    assert code == 404  # another project's server
    assert await shelved_image(cloud, server_id) is None  # no image left by a refusal


async def test_delete_of_a_shelved_server_deletes_its_image(cloud: Cloud) -> None:
    server_id = (await active_server(cloud, "gone"))["id"]
    await act(cloud, server_id, {"shelve": None})
    await wait_status(cloud, server_id, "SHELVED_OFFLOADED")
    image = await shelved_image(cloud, server_id)
    assert image is not None
    code, _, _ = await cloud.call("DELETE", f"{S}/{server_id}")
    assert code == 204
    await wait_status(cloud, server_id, "DELETED")
    code, _, _ = await cloud.call("GET", f"{IMAGES}/{image['id']}")
    assert code == 404


async def set_compute_status(cloud: Cloud, status: str) -> None:
    _, body, _ = await cloud.call("GET", "/compute/v2.1/os-services", version="2.53")
    (service,) = [s for s in body["services"] if s["binary"] == "cloudd-compute"]
    code, body, _ = await cloud.call("PUT", f"/compute/v2.1/os-services/{service['id']}",
                                     version="2.53", json={"status": status})
    assert code == 200, body


async def test_unshelve_without_a_host_stays_offloaded(later_cloud: Cloud) -> None:
    cloud = later_cloud
    server_id = (await active_server(cloud, "nohost"))["id"]
    await act(cloud, server_id, {"shelve": None})
    await wait_status(cloud, server_id, "SHELVED_OFFLOADED")
    await set_compute_status(cloud, "disabled")
    code, _ = await act(cloud, server_id, {"unshelve": None})
    assert code == 202
    for _ in range(200):  # the scheduling finds no host: idle again, still offloaded
        _, body, _ = await cloud.call("GET", f"{S}/{server_id}")
        if body["server"]["OS-EXT-STS:task_state"] is None:
            break
        await asyncio.sleep(0.05)
    assert body["server"]["status"] == "SHELVED_OFFLOADED"
    assert body["server"]["OS-EXT-STS:task_state"] is None
    await set_compute_status(cloud, "enabled")
    code, _ = await act(cloud, server_id, {"unshelve": None})  # and it can be tried again
    assert code == 202
    await wait_status(cloud, server_id, "ACTIVE")
