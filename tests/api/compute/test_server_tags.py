"""Server tags (2.26) as Nova serves them: the six routes, tag validation, the 50-tag limit,
the tags in the server views, and the server list's tag filters."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from harness.api import BOOT_IMAGE, running_cloud, wait_status
from harness.api import ApiCloud as Cloud

S = "/compute/v2.1/servers"
V = "2.26"


async def active_server(cloud: Cloud, name: str = "tagged") -> str:
    code, body, _ = await cloud.call("POST", S, json={"server": {
        "name": name, "imageRef": BOOT_IMAGE, "flavorRef": "1"}})
    assert code == 202, body
    await wait_status(cloud, body["server"]["id"], "ACTIVE")
    return str(body["server"]["id"])


async def test_tag_routes(cloud: Cloud) -> None:
    server_id = await active_server(cloud)
    tags = f"{S}/{server_id}/tags"
    code, body, _ = await cloud.call("GET", tags, version=V)
    assert (code, body) == (200, {"tags": []})
    code, body, headers = await cloud.call("PUT", f"{tags}/web", version=V)
    assert code == 201 and headers["Location"].endswith(f"/servers/{server_id}/tags/web")
    code, _, _ = await cloud.call("PUT", f"{tags}/web", version=V)
    assert code == 204  # already there
    code, _, _ = await cloud.call("GET", f"{tags}/web", version=V)
    assert code == 204
    code, body, _ = await cloud.call("GET", f"{tags}/db", version=V)
    assert code == 404 and list(body) == ["itemNotFound"]
    code, body, _ = await cloud.call("PUT", tags, version=V, json={"tags": ["b", "a", "b"]})
    assert (code, body) == (200, {"tags": ["a", "b"]})
    code, body, _ = await cloud.call("GET", f"{S}/{server_id}", version=V)
    assert body["server"]["tags"] == ["a", "b"]
    code, body, _ = await cloud.call("GET", f"{S}/detail", version=V)
    assert body["servers"][0]["tags"] == ["a", "b"]
    code, body, _ = await cloud.call("PUT", f"{S}/{server_id}", version=V,
                                     json={"server": {"name": "renamed"}})
    assert body["server"]["tags"] == ["a", "b"]
    code, _, _ = await cloud.call("DELETE", f"{tags}/a", version=V)
    assert code == 204
    code, body, _ = await cloud.call("DELETE", f"{tags}/a", version=V)
    assert code == 404 and list(body) == ["itemNotFound"]
    code, _, _ = await cloud.call("DELETE", tags, version=V)
    assert code == 204
    code, body, _ = await cloud.call("GET", tags, version=V)
    assert body == {"tags": []}


async def test_routes_do_not_exist_below_2_26(cloud: Cloud) -> None:
    server_id = await active_server(cloud)
    for method, path in (("GET", "/tags"), ("PUT", "/tags/x"), ("DELETE", "/tags"),
                         ("GET", "/tags/x"), ("DELETE", "/tags/x")):
        code, body, _ = await cloud.call(method, f"{S}/{server_id}{path}", version="2.25")
        assert code == 404 and list(body) == ["itemNotFound"], (method, path)
    code, body, _ = await cloud.call("GET", f"{S}/{server_id}", version="2.25")
    assert "tags" not in body["server"]


@pytest.mark.parametrize("body", [
    {"tags": ["a/b"]}, {"tags": ["a,b"]}, {"tags": [""]}, {"tags": ["x" * 61]},
    {"tags": [f"t{n}" for n in range(51)]}, {"tags": "a"}, {"tags": [1]}, {"tags": None},
    {}, {"tags": [], "extra": 1}, [], "tags",
])
async def test_bad_tag_lists_are_refused(cloud: Cloud, body: Any) -> None:
    server_id = await active_server(cloud)
    code, answer, _ = await cloud.call("PUT", f"{S}/{server_id}/tags", version=V, json=body)
    assert code == 400 and list(answer) == ["badRequest"], (body, answer)


async def test_one_tag_validation_and_limit(cloud: Cloud) -> None:
    server_id = await active_server(cloud)
    tags = f"{S}/{server_id}/tags"
    for bad in ("a,b", "a%2Fb", "x" * 61):
        code, body, _ = await cloud.call("PUT", f"{tags}/{bad}", version=V)
        assert code in (400, 404) and list(body) in (["badRequest"], ["itemNotFound"]), bad
    code, body, _ = await cloud.call("PUT", f"{tags}/{'x' * 60}", version=V)
    assert code == 201, body
    code, body, _ = await cloud.call("PUT", tags, version=V,
                                     json={"tags": [f"t{n}" for n in range(50)]})
    assert code == 200 and len(body["tags"]) == 50
    code, body, _ = await cloud.call("PUT", f"{tags}/one-more", version=V)
    assert code == 400 and "limit 50" in body["badRequest"]["message"]
    code, _, _ = await cloud.call("PUT", f"{tags}/t7", version=V)
    assert code == 204  # an existing tag is not one more


async def test_tags_are_the_projects(cloud: Cloud) -> None:
    server_id = await active_server(cloud)
    member, _ = await cloud.user_token("tags-other", ("member", "reader"))
    for method, path in (("GET", "/tags"), ("PUT", "/tags/x"), ("DELETE", "/tags")):
        code, body, _ = await cloud.call(method, f"{S}/{server_id}{path}", token=member,
                                         version=V)
        assert code == 404, (method, path, body)
    code, body, _ = await cloud.call("GET", f"{S}/8a3c1d2e-0000-4000-8000-0000000000ff/tags",
                                     version=V)
    assert code == 404


async def test_tags_change_only_in_settled_states(cloud: Cloud) -> None:
    server_id = await active_server(cloud)
    await cloud.db.execute("UPDATE instances SET vm_state = 'building' WHERE uuid = $1",
                           server_id)
    code, body, _ = await cloud.call("PUT", f"{S}/{server_id}/tags/x", version=V)
    assert code == 409 and list(body) == ["conflictingRequest"]
    code, body, _ = await cloud.call("GET", f"{S}/{server_id}/tags", version=V)
    assert code == 200


async def test_list_filters_by_tags(cloud: Cloud) -> None:
    ids = {name: await active_server(cloud, name) for name in ("ab", "a", "c", "none")}
    for name, tags in (("ab", ["a", "b"]), ("a", ["a"]), ("c", ["c"])):
        code, _, _ = await cloud.call("PUT", f"{S}/{ids[name]}/tags", version=V,
                                      json={"tags": tags})
        assert code == 200

    async def listed(query: str, version: str = V) -> set[str]:
        code, body, _ = await cloud.call("GET", f"{S}?{query}", version=version)
        assert code == 200, body
        by_id = {v: k for k, v in ids.items()}
        return {by_id[s["id"]] for s in body["servers"]}

    assert await listed("tags=a,b") == {"ab"}
    assert await listed("tags=a") == {"ab", "a"}
    assert await listed("tags-any=b,c") == {"ab", "c"}
    assert await listed("not-tags=a,b") == {"a", "c", "none"}
    assert await listed("not-tags-any=a,c") == {"none"}
    assert await listed("tags=a&not-tags-any=b") == {"a"}
    assert await listed("tags=zzz") == set()
    assert await listed("tags=a", version="2.25") == set(ids)  # no filter below 2.26


@pytest.mark.usefixtures("unreleased_microversions")
async def test_tags_on_create_from_2_52(tmp_path: Path) -> None:
    """A cloud configured to advertise 2.52 takes `tags` in the create body."""
    async with running_cloud(tmp_path, api={"max_microversion": "2.52"}) as cloud:
        server = {"name": "t", "imageRef": BOOT_IMAGE, "flavorRef": "1"}
        code, body, _ = await cloud.call("POST", S, version="2.52",
                                         json={"server": {**server, "tags": ["x", "y"]}})
        assert code == 202, body
        code, body, _ = await cloud.call("GET", f"{S}/{body['server']['id']}/tags",
                                         version="2.52")
        assert body == {"tags": ["x", "y"]}
        bad_tags: list[Any] = [None, ["a/b"], [f"t{n}" for n in range(51)], "x"]
        for tags in bad_tags:
            code, body, _ = await cloud.call("POST", S, version="2.52",
                                             json={"server": {**server, "tags": tags}})
            assert code == 400 and list(body) == ["badRequest"], (tags, body)
        code, body, _ = await cloud.call("POST", S, version="2.51",
                                         json={"server": {**server, "tags": ["x"]}})
        assert code == 400 and list(body) == ["badRequest"], body
