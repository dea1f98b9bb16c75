"""os-server-groups: the API per microversion, isolation, quotas, and placement by policy on two
real agents (fake driver)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from harness.api import ApiCloud as Cloud
from harness.api import wait_status
from harness.config import enroll_agent

from cloudd.agent.service import build_agent
from cloudd.config import resolve_paths, validate

from .test_quotas import server_request, start_cloud

G = "/compute/v2.1/os-server-groups"
S = "/compute/v2.1/servers"


async def server_body(cloud: Cloud, name: str, group: str | None = None) -> dict[str, Any]:
    body = await server_request(cloud, name)
    if group is not None:
        body["os:scheduler_hints"] = {"group": group}
    return body


async def test_create_show_list_delete_per_microversion(cloud: Cloud) -> None:
    code, body, _ = await cloud.call("POST", G, json={"server_group": {
        "name": "web", "policies": ["anti-affinity"]}})
    assert code == 200, body
    group = body["server_group"]
    assert set(group) == {"id", "name", "policies", "members", "metadata"}
    assert group["policies"] == ["anti-affinity"] and group["members"] == []
    code, body, _ = await cloud.call("GET", f"{G}/{group['id']}", version="2.13")
    assert set(body["server_group"]) == {"id", "name", "policies", "members", "metadata",
                                         "project_id", "user_id"}
    assert body["server_group"]["project_id"] == cloud.admin_project
    code, body, _ = await cloud.call("GET", G)
    assert [g["id"] for g in body["server_groups"]] == [group["id"]]
    code, body, _ = await cloud.call("DELETE", f"{G}/{group['id']}")
    assert code == 204
    code, body, _ = await cloud.call("GET", f"{G}/{group['id']}")
    assert code == 404 and "itemNotFound" in body


@pytest.mark.parametrize(("version", "group", "status"), [
    ("2.1", {"name": "g", "policies": ["soft-affinity"]}, 400),  # soft policies from 2.15
    ("2.15", {"name": "g", "policies": ["soft-affinity"]}, 200),
    ("2.1", {"name": "g", "policies": ["affinity", "anti-affinity"]}, 400),
    ("2.1", {"name": "g", "policies": []}, 400),
    ("2.1", {"name": "g", "policy": "affinity"}, 400),  # `policy` only from 2.64
    ("2.1", {"name": "", "policies": ["affinity"]}, 400),
    ("2.1", {"policies": ["affinity"]}, 400),
    ("2.1", {"name": "g", "policies": ["spread"]}, 400),
    ("2.64", {"name": "g", "policy": "affinity"}, 406),  # above the advertised maximum (2.48)
])
async def test_create_validation(cloud: Cloud, version: str, group: dict[str, Any],
                                 status: int) -> None:
    code, body, _ = await cloud.call("POST", G, version=version, json={"server_group": group})
    assert code == status, body
    if status >= 400:
        assert list(body) in (["badRequest"], ["computeFault"])


@pytest.mark.usefixtures("unreleased_microversions")
async def test_policy_and_rules_from_2_64(db_url: str, tmp_path: Path) -> None:
    """A cloud configured to advertise 2.64 takes `policy` + `rules` and shows them."""
    async with start_cloud(db_url, tmp_path,
                           max_microversion="2.64") as (cloud, _):
        code, body, _ = await cloud.call("POST", G, version="2.64", json={"server_group": {
            "name": "g", "policy": "anti-affinity", "rules": {"max_server_per_host": 2}}})
        assert code == 200, body
        assert set(body["server_group"]) == {"id", "name", "policy", "rules", "members",
                                             "project_id", "user_id"}
        assert body["server_group"]["rules"] == {"max_server_per_host": 2}
        code, body, _ = await cloud.call("GET", f"{G}/{body['server_group']['id']}")
        assert body["server_group"]["policies"] == ["anti-affinity"]  # the 2.1 view
        for bad in ({"name": "g", "policy": "affinity", "rules": {"max_server_per_host": 2}},
                    {"name": "g", "policies": ["affinity"]},
                    {"name": "g", "policy": "anti-affinity", "rules": {"max_server_per_host": 0}}):
            code, body, _ = await cloud.call("POST", G, version="2.64", json={"server_group": bad})
            assert code == 400, (bad, body)


async def test_groups_are_private_to_their_project(cloud: Cloud) -> None:
    token, _ = await cloud.user_token("sg-other", ("member", "reader"))
    reader, _ = await cloud.user_token("sg-other", ("reader",))
    code, body, _ = await cloud.call("POST", G, json={"server_group": {
        "name": "admins", "policies": ["affinity"]}})
    admin_group = body["server_group"]["id"]
    code, body, _ = await cloud.call("GET", f"{G}/{admin_group}", token=token)
    assert code == 404
    code, body, _ = await cloud.call("DELETE", f"{G}/{admin_group}", token=token)
    assert code == 404
    code, body, _ = await cloud.call("POST", S, token=token,
                                     json=await server_body(cloud, "x", admin_group))
    assert code == 400 and "could not be found" in body["badRequest"]["message"]
    code, body, _ = await cloud.call("POST", G, token=reader, json={"server_group": {
        "name": "r", "policies": ["affinity"]}})
    assert code == 403  # readers read
    code, body, _ = await cloud.call("POST", G, token=token, json={"server_group": {
        "name": "mine", "policies": ["affinity"]}})
    assert code == 200
    code, body, _ = await cloud.call("GET", G, token=reader)
    assert [g["name"] for g in body["server_groups"]] == ["mine"]
    code, body, _ = await cloud.call("GET", G)
    assert [g["name"] for g in body["server_groups"]] == ["admins"]
    code, body, _ = await cloud.call("GET", f"{G}?all_projects=True")
    assert sorted(g["name"] for g in body["server_groups"]) == ["admins", "mine"]


async def test_server_group_quotas(cloud: Cloud) -> None:
    token, project_id = await cloud.user_token("sgq", ("member", "reader"))
    await cloud.call("PUT", f"/compute/v2.1/os-quota-sets/{project_id}",
                     json={"quota_set": {"server_groups": 1, "server_group_members": 1}})
    code, body, _ = await cloud.call("POST", G, token=token, json={"server_group": {
        "name": "one", "policies": ["soft-anti-affinity"]}}, version="2.15")
    group = body["server_group"]["id"]
    code, body, _ = await cloud.call("POST", G, token=token, json={"server_group": {
        "name": "two", "policies": ["affinity"]}})
    assert code == 403
    assert body["forbidden"]["message"] == "Quota exceeded, too many server groups."
    code, body, _ = await cloud.call("POST", S, token=token,
                                     json=await server_body(cloud, "m1", group))
    assert code == 202, body
    code, body, _ = await cloud.call("POST", S, token=token,
                                     json=await server_body(cloud, "m2", group))
    assert code == 403
    assert body["forbidden"]["message"] == "Quota exceeded, too many servers in group"
    code, body, _ = await cloud.call("GET", "/compute/v2.1/limits", token=token)
    assert body["limits"]["absolute"]["totalServerGroupsUsed"] == 1


@pytest.fixture
async def two_hosts(db_url: str, tmp_path: Path) -> AsyncIterator[Cloud]:
    """A cloud with two compute hosts: "ctl" (in the controller) and "node2" (its own agent)."""
    async with start_cloud(db_url, tmp_path) as (cloud, controller):
        rpc_port = controller.services["conductor"].port  # type: ignore[attr-defined]
        node2 = resolve_paths(validate({
            "default": {"state_dir": str(tmp_path / "node2"), "host": "node2"},
            "agent": {"controller_url": f"wss://127.0.0.1:{rpc_port}/agent"},
            "service": {"report_interval": "0.5"},
            "compute": {"compute_driver": "fake"},
        }))
        await enroll_agent(controller, node2)
        agent = build_agent(node2)
        await agent.start()
        try:
            deadline = time.monotonic() + 20
            while await cloud.db.fetchval("SELECT COUNT(*) FROM compute_nodes") < 2:
                assert time.monotonic() < deadline, "node2 never registered"
                await asyncio.sleep(0.05)
            yield cloud
        finally:
            await agent.stop()


async def test_anti_affinity_spreads_then_fails(two_hosts: Cloud) -> None:
    cloud = two_hosts
    code, body, _ = await cloud.call("POST", G, json={"server_group": {
        "name": "spread", "policies": ["anti-affinity"]}})
    group = body["server_group"]["id"]
    hosts = []
    for name in ("a1", "a2"):
        code, body, _ = await cloud.call("POST", S, json=await server_body(cloud, name, group))
        assert code == 202, body
        shown = await wait_status(cloud, body["server"]["id"], "ACTIVE")
        hosts.append(shown["OS-EXT-SRV-ATTR:host"])
    assert sorted(hosts) == ["ctl", "node2"]
    code, body, _ = await cloud.call("POST", S, json=await server_body(cloud, "a3", group))
    assert code == 202
    failed = await wait_status(cloud, body["server"]["id"], "ERROR")
    assert "No valid host" in failed["fault"]["message"]
    code, body, _ = await cloud.call("GET", f"{G}/{group}")
    assert len(body["server_group"]["members"]) == 3


async def test_affinity_keeps_members_together(two_hosts: Cloud) -> None:
    cloud = two_hosts
    code, body, _ = await cloud.call("POST", G, json={"server_group": {
        "name": "pack", "policies": ["affinity"]}})
    group = body["server_group"]["id"]
    request = await server_body(cloud, "b", group)
    request["server"]["min_count"] = 3
    code, body, _ = await cloud.call("POST", S, json=request)
    assert code == 202, body
    code, body, _ = await cloud.call("GET", S)
    assert len(body["servers"]) == 3
    hosts = set()
    for server in body["servers"]:
        hosts.add((await wait_status(cloud, server["id"], "ACTIVE"))["OS-EXT-SRV-ATTR:host"])
    assert len(hosts) == 1
    code, body, _ = await cloud.call("POST", S, json=await server_body(cloud, "b4", group))
    again = await wait_status(cloud, body["server"]["id"], "ACTIVE")
    assert {again["OS-EXT-SRV-ATTR:host"]} == hosts
