"""Servers without a compute agent: create, views per microversion, isolation, validation."""

from __future__ import annotations

import asyncio
from typing import Any
from typing import Any as Cloud

IMAGE = "8a3c1d2e-0000-4000-8000-000000000001"
S = "/compute/v2.1/servers"
REQUIRED_21 = {"id", "name", "status", "image", "flavor", "user_id", "tenant_id", "created",
               "updated", "metadata", "links", "addresses", "hostId"}
ALLOWED_21 = REQUIRED_21 | {
    "progress", "OS-DCF:diskConfig", "accessIPv4", "accessIPv6", "fault", "key_name",
    "security_groups", "OS-SRV-USG:launched_at", "OS-SRV-USG:terminated_at",
    "OS-EXT-AZ:availability_zone", "OS-EXT-STS:task_state", "OS-EXT-STS:vm_state",
    "OS-EXT-STS:power_state", "OS-EXT-SRV-ATTR:host", "OS-EXT-SRV-ATTR:instance_name",
    "OS-EXT-SRV-ATTR:hypervisor_hostname", "os-extended-volumes:volumes_attached", "config_drive"}


async def create(cloud: Cloud, token: str | None = None, **server: object) -> tuple[int, Any, Any]:
    body = {"name": "vm1", "imageRef": IMAGE, "flavorRef": "1", **server}
    code, created, headers = await cloud.call("POST", S, token=token, json={"server": body})
    return code, created, headers


async def test_create_show_list_delete(cloud: Cloud) -> None:
    status, body, headers = await create(cloud, metadata={"a": "b"})
    assert status == 202, body
    server_id = body["server"]["id"]
    assert headers["Location"].endswith(f"/compute/v2.1/servers/{server_id}")
    assert set(body["server"]) == {"id", "links", "OS-DCF:diskConfig", "security_groups",
                                   "adminPass"}
    status, body, _ = await cloud.call("GET", f"{S}/{server_id}")
    view = body["server"]
    assert REQUIRED_21 <= set(view) <= ALLOWED_21
    assert view["flavor"]["id"] == "1" and view["image"]["id"] == IMAGE
    assert view["metadata"] == {"a": "b"} and view["created"].endswith("Z")
    status, body, _ = await cloud.call("GET", f"{S}/{server_id}", version="2.47")
    view = body["server"]
    assert set(view["flavor"]) == {"vcpus", "ram", "disk", "ephemeral", "swap", "original_name",
                                   "extra_specs"}
    assert view["flavor"]["original_name"] == "m1.tiny"
    assert view["locked"] is False and view["tags"] == [] and "description" in view
    assert "OS-EXT-SRV-ATTR:reservation_id" in view  # admin at >= 2.3
    status, body, _ = await cloud.call("GET", S)
    assert body["servers"] == [{"id": server_id, "name": "vm1", "links": body["servers"][0]["links"]}]
    status, body, _ = await cloud.call("GET", f"{S}/detail?name=^vm")
    assert [s["id"] for s in body["servers"]] == [server_id]
    status, body, _ = await cloud.call("GET", f"{S}/detail?name=nomatch")
    assert body["servers"] == []
    status, body, headers = await cloud.call("DELETE", f"{S}/{server_id}")
    assert status == 204
    delete_request = headers["X-Compute-Request-Id"]
    for _ in range(200):  # the agent deletes the guest, then the server is gone (404)
        status, body, _ = await cloud.call("GET", f"{S}/{server_id}")
        if status == 404:
            break
        await asyncio.sleep(0.05)
    assert status == 404
    status, body, _ = await cloud.call("GET", f"{S}/{server_id}/os-instance-actions")
    assert delete_request in [a["request_id"] for a in body["instanceActions"]]


async def test_instance_action_request_id_matches_header(cloud: Cloud) -> None:
    _, body, headers = await create(cloud)
    server_id = body["server"]["id"]
    request_id = headers["X-Compute-Request-Id"]
    status, body, _ = await cloud.call("GET", f"{S}/{server_id}/os-instance-actions/{request_id}")
    assert status == 200
    action = body["instanceAction"]
    assert action["action"] == "create" and action["request_id"] == request_id
    assert isinstance(action["events"], list)
    status, body, _ = await cloud.call("GET", f"{S}/{server_id}/os-instance-actions")
    assert set(body["instanceActions"][0]) == {"action", "instance_uuid", "request_id", "user_id",
                                               "project_id", "start_time", "message"}


async def test_paging_with_next_link(cloud: Cloud) -> None:
    ids = []
    for n in range(3):
        _, body, _ = await create(cloud, name=f"p{n}")
        ids.append(body["server"]["id"])
    status, body, _ = await cloud.call("GET", f"{S}?limit=2")
    assert len(body["servers"]) == 2 and body["servers_links"][0]["rel"] == "next"
    marker = body["servers"][-1]["id"]
    status, body, _ = await cloud.call("GET", f"{S}?limit=2&marker={marker}")
    assert len(body["servers"]) == 1 and "servers_links" not in body
    seen = {s["id"] for s in body["servers"]}
    assert seen < set(ids)
    for bad in ("limit=-1", "limit=x", "marker=nope", "changes-since=yesterday"):
        status, body, _ = await cloud.call("GET", f"{S}?{bad}")
        assert status == 400 and "badRequest" in body, bad


async def test_project_isolation_and_reader(cloud: Cloud) -> None:
    _, body, _ = await create(cloud)
    admin_server = body["server"]["id"]
    member, _ = await cloud.user_token("demo", ("member", "reader"))
    status, body, _ = await cloud.call("GET", f"{S}/{admin_server}", token=member)
    assert status == 404
    status, body, _ = await cloud.call("GET", S, token=member)
    assert body["servers"] == []
    status, body, _ = await create(cloud, token=member, name="mine")
    assert status == 202
    mine = body["server"]["id"]
    status, body, _ = await cloud.call("GET", f"{S}/{mine}", token=member)
    assert status == 200 and "OS-EXT-SRV-ATTR:host" not in body["server"]
    reader, _ = await cloud.user_token("demo", ("reader",))
    status, body, _ = await cloud.call("GET", S, token=reader)
    assert [s["id"] for s in body["servers"]] == [mine]
    status, body, _ = await create(cloud, token=reader)
    assert status == 403 and "forbidden" in body
    status, body, _ = await cloud.call("DELETE", f"{S}/{mine}", token=reader)
    assert status == 403
    status, body, _ = await cloud.call("GET", f"{S}/detail?all_tenants=", version="2.1")
    assert {admin_server, mine} <= {s["id"] for s in body["servers"]}


async def test_bad_input_is_400(cloud: Cloud) -> None:
    bad_servers = [
        {"imageRef": IMAGE, "flavorRef": "1"},
        {"name": "", "imageRef": IMAGE, "flavorRef": "1"},
        {"name": " x", "imageRef": IMAGE, "flavorRef": "1"},
        {"name": "x" * 256, "imageRef": IMAGE, "flavorRef": "1"},
        {"name": 12345, "imageRef": IMAGE, "flavorRef": "1"},
        {"name": "x", "imageRef": IMAGE, "flavorRef": "999"},
        {"name": "x", "imageRef": "not-a-uuid", "flavorRef": "1"},
        {"name": "x", "imageRef": IMAGE, "flavorRef": "1", "metadata": {"k": 1}},
        {"name": "x", "imageRef": IMAGE, "flavorRef": "1", "metadata": {"": "v"}},
        {"name": "x", "imageRef": IMAGE, "flavorRef": "1", "bogus": True},
        {"name": "x", "imageRef": IMAGE, "flavorRef": "1", "user_data": "%%%"},
        {"name": "x", "imageRef": IMAGE, "flavorRef": "1", "key_name": "missing"},
        {"name": "x", "imageRef": IMAGE, "flavorRef": "1", "description": "too early"},
    ]
    for server in bad_servers:
        status, body, _ = await cloud.call("POST", S, json={"server": server})
        assert status == 400 and "badRequest" in body, server
    status, body, _ = await cloud.call("POST", S, data=b"{not json")
    assert status == 400
    meta = {f"k{i}": "v" for i in range(129)}
    status, body, _ = await create(cloud, metadata=meta)
    assert status == 403


async def test_flavor_link_and_metadata_api(cloud: Cloud) -> None:
    status, body, _ = await create(cloud, flavorRef=f"{cloud.base}/compute/v2.1/flavors/2")
    assert status == 202
    server_id = body["server"]["id"]
    md = f"{S}/{server_id}/metadata"
    assert (await cloud.call("POST", md, json={"metadata": {"a": "1"}}))[1] == {"metadata": {"a": "1"}}
    status, body, _ = await cloud.call("PUT", f"{md}/b", json={"meta": {"b": "2"}})
    assert status == 200
    status, body, _ = await cloud.call("PUT", f"{md}/b", json={"meta": {"c": "2"}})
    assert status == 400
    assert (await cloud.call("GET", md))[1] == {"metadata": {"a": "1", "b": "2"}}
    assert (await cloud.call("DELETE", f"{md}/a"))[0] == 204
    assert (await cloud.call("GET", f"{md}/a"))[0] == 404
    assert (await cloud.call("PUT", md, json={"metadata": {"z": "9"}}))[1] == {"metadata": {"z": "9"}}
    status, body, _ = await cloud.call("PUT", f"{S}/{server_id}", json={"server": {"name": "renamed"}})
    assert status == 200 and body["server"]["name"] == "renamed"
    assert "OS-EXT-STS:vm_state" not in body["server"]
    assert (await cloud.call("GET", f"{S}/{server_id}/ips"))[1] == {"addresses": {}}


async def test_actions_without_a_host_are_conflicts(cloud: Cloud) -> None:
    _, body, _ = await create(cloud)
    server_id = body["server"]["id"]
    action = f"{S}/{server_id}/action"
    status, body, _ = await cloud.call("POST", action, json={"os-start": None})
    assert status == 409 and "conflictingRequest" in body
    status, body, _ = await cloud.call("POST", action, json={"frobnicate": {}})
    assert status == 400
    status, body, _ = await cloud.call("POST", action, json={"reboot": {"type": "MEDIUM"}})
    assert status == 400
    status, _, _ = await cloud.call("POST", action, json={"os-resetState": {"state": "error"}})
    assert status == 202
    _, body, _ = await cloud.call("GET", f"{S}/{server_id}")
    assert body["server"]["status"] == "ERROR" and "progress" not in body["server"]
    assert (await cloud.call("POST", action, json={"lock": None}))[0] == 202
    _, body, _ = await cloud.call("GET", f"{S}/{server_id}", version="2.9")
    assert body["server"]["locked"] is True
    status, body, _ = await cloud.call("POST", action, json={"createImage": {"name": "snap"}})
    # A snapshot of an ERROR server is a conflict, and leaves no image behind.
    assert status == 409 and "conflictingRequest" in body
    _, images, _ = await cloud.call("GET", "/image/v2/images?name=snap")
    assert images["images"] == []
