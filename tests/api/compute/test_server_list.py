"""Server list order and filters as Nova's: sort_key/sort_dir, changes-since with deleted
servers, an admin's deleted filter (ip and ip6: tests/api/network/test_server_ip_filter.py)."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from harness.api import BOOT_IMAGE, active_server, wait_status
from harness.api import ApiCloud as Cloud
from harness.api import listed_names as names

S = "/compute/v2.1/servers"


async def test_sort_keys_and_directions(cloud: Cloud) -> None:
    for name in ("sb", "sa", "sc"):
        await active_server(cloud, name)
    assert await names(cloud, "sort_key=display_name&sort_dir=asc") == ["sa", "sb", "sc"]
    assert await names(cloud, "sort_key=display_name") == ["sc", "sb", "sa"]  # desc default
    assert await names(cloud, "") == ["sc", "sa", "sb"]  # newest first
    page = await names(cloud, "sort_key=display_name&sort_dir=asc&limit=2")
    assert page == ["sa", "sb"]
    code, body, _ = await cloud.call("GET", f"{S}?sort_key=display_name&sort_dir=asc&limit=2")
    next_href = body["servers_links"][0]["href"]
    assert "sort_key=display_name" in next_href and "sort_dir=asc" in next_href
    assert next_href.startswith(cloud.base)
    code, body, _ = await cloud.call("GET", next_href[len(cloud.base):])
    assert [s["name"] for s in body["servers"]] == ["sc"]
    for bad in ("sort_key=bogus", "sort_key=display_name&sort_dir=up",
                "sort_dir=asc"):
        code, body, _ = await cloud.call("GET", f"{S}?{bad}")
        assert code == 400 and list(body) == ["badRequest"], bad
    member, _ = await cloud.user_token("sorter", ("member", "reader"))
    code, body, _ = await cloud.call("GET", f"{S}?sort_key=host", token=member)
    assert code == 403 and list(body) == ["forbidden"]
    assert (await cloud.call("GET", f"{S}?sort_key=host"))[0] == 200  # admins may


async def test_changes_since_lists_deleted_servers(cloud: Cloud) -> None:
    since = datetime.fromtimestamp(time.time() - 5, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    kept, gone = await active_server(cloud, "kept"), await active_server(cloud, "gone")
    code, _, _ = await cloud.call("DELETE", f"{S}/{gone['id']}")
    assert code == 204
    await wait_status(cloud, gone["id"], "DELETED")
    assert await names(cloud, "") == ["kept"]
    code, body, _ = await cloud.call("GET", f"{S}/detail?changes-since={since}")
    statuses = {server["name"]: server["status"] for server in body["servers"]}
    assert statuses == {"kept": "ACTIVE", "gone": "DELETED"}
    assert kept["id"] in {s["id"] for s in body["servers"]}

    assert await names(cloud, "deleted=true") == ["gone"]  # admins: the deleted ones only
    assert await names(cloud, "deleted=False") == ["kept"]  # what `openstack server list` sends
    member, _ = await cloud.user_token("lister", ("member", "reader"))
    for name in ("own-kept", "own-gone"):
        code, body, _ = await cloud.call("POST", S, token=member, json={"server": {
            "name": name, "imageRef": BOOT_IMAGE, "flavorRef": "1"}})
        assert code == 202, body
        await wait_status(cloud, body["server"]["id"], "ACTIVE")
    code, _, _ = await cloud.call("DELETE", f"{S}/{body['server']['id']}", token=member)
    await wait_status(cloud, body["server"]["id"], "DELETED")
    assert await names(cloud, "deleted=true", token=member) == ["own-kept"]  # ignored: live
    code, body, _ = await cloud.call("GET", f"{S}?deleted=maybe")
    assert code == 400
