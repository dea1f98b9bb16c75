"""os-hypervisors' per-host calls below 2.53: search by name, the servers of each hypervisor,
and uptime (asked of the host's agent; a host that is down is Nova's 400). Admin only."""

from __future__ import annotations

from typing import Any

import pytest
from harness.api import BOOT_IMAGE, wait_status
from harness.api import ApiCloud as Cloud

from cloudd.agent.service import AgentService
from cloudd.compute import hosts

H = "/compute/v2.1/os-hypervisors"


async def only_hypervisor(cloud: Cloud) -> dict[str, Any]:
    code, body, _ = await cloud.call("GET", H)
    assert code == 200 and len(body["hypervisors"]) == 1, body
    return dict(body["hypervisors"][0])


async def test_search_and_servers_by_name(cloud: Cloud) -> None:
    hypervisor = await only_hypervisor(cloud)
    name = hypervisor["hypervisor_hostname"]
    code, body, _ = await cloud.call("GET", f"{H}/{name[1:-1]}/search")
    assert code == 200 and body["hypervisors"] == [hypervisor]
    code, body, _ = await cloud.call("GET", f"{H}/no-such-host/search")
    assert code == 404 and "no-such-host" in body["itemNotFound"]["message"]
    code, body, _ = await cloud.call("GET", f"{H}/{name}/servers")
    assert code == 200 and body["hypervisors"] == [hypervisor]  # no "servers" key when empty

    code, created, _ = await cloud.call("POST", "/compute/v2.1/servers", json={"server": {
        "name": "on-it", "imageRef": BOOT_IMAGE, "flavorRef": "1"}})
    assert code == 202, created
    server = await wait_status(cloud, created["server"]["id"], "ACTIVE")
    code, body, _ = await cloud.call("GET", f"{H}/{name}/servers")
    assert code == 200
    assert body["hypervisors"][0]["servers"] == [
        {"name": server["OS-EXT-SRV-ATTR:instance_name"], "uuid": server["id"]}]
    code, body, _ = await cloud.call("GET", f"{H}/no-such-host/servers")
    assert code == 404


async def test_uptime_comes_from_the_host(cloud: Cloud) -> None:
    hypervisor = await only_hypervisor(cloud)
    code, body, _ = await cloud.call("GET", f"{H}/{hypervisor['id']}/uptime")
    assert code == 200, body
    assert set(body["hypervisor"]) == {"id", "hypervisor_hostname", "state", "status", "uptime"}
    assert " up " in body["hypervisor"]["uptime"]
    assert "load average" in body["hypervisor"]["uptime"]
    code, body, _ = await cloud.call("GET", f"{H}/999999/uptime")
    assert code == 404 and list(body) == ["itemNotFound"]

    for service in await hosts.services(cloud.db, binary=hosts.COMPUTE_BINARY):
        await hosts.set_forced_down(cloud.db, service.id, True)
    code, body, _ = await cloud.call("GET", f"{H}/{hypervisor['id']}/uptime")
    assert code == 400 and "unavailable" in body["badRequest"]["message"], body


async def test_per_host_calls_are_for_admins(cloud: Cloud) -> None:
    hypervisor = await only_hypervisor(cloud)
    member, _ = await cloud.user_token("hyp-user", ("member", "reader"))
    for path in (f"{hypervisor['hypervisor_hostname']}/search",
                 f"{hypervisor['hypervisor_hostname']}/servers", f"{hypervisor['id']}/uptime"):
        code, body, _ = await cloud.call("GET", f"{H}/{path}", token=member)
        assert code == 403 and list(body) == ["forbidden"], path


async def test_a_hosts_bad_uptime_is_refused(cloud: Cloud, monkeypatch: pytest.MonkeyPatch) \
        -> None:
    """A host whose uptime cannot be answered (here: longer than the bounded 1024 characters,
    which the agent's own model refuses) is a 409 naming the host, never a 500."""
    hypervisor = await only_hypervisor(cloud)

    async def hostile() -> str:
        return "up " * 1000

    monkeypatch.setattr(cloud.host.get(AgentService).driver, "get_host_uptime", hostile)
    code, body, _ = await cloud.call("GET", f"{H}/{hypervisor['id']}/uptime")
    assert code == 409, body
    assert "ctl could not give its uptime" in body["conflictingRequest"]["message"]
