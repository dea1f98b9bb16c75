"""Nova's paging of the key pair list (2.35) and of the hypervisor lists (2.33): `limit` and
`marker` (a key pair's name; a hypervisor's id, its uuid from 2.53), the next link when a page
is full, 400 for an unknown marker or a bad limit, and no paging below those versions."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from harness.api import ApiCloud as Cloud
from harness.api import running_cloud

K = "/compute/v2.1/os-keypairs"
H = "/compute/v2.1/os-hypervisors"


@pytest.fixture
async def cloud(db_url: str, tmp_path: Path,
                unreleased_microversions: None) -> AsyncIterator[Cloud]:
    async with running_cloud(tmp_path, database={"connection": db_url},
                             api={"max_microversion": "2.53"}) as cloud:
        yield cloud


async def test_key_pairs_page_by_name(cloud: Cloud) -> None:
    for name in ("kp-c", "kp-a", "kp-b"):
        code, body, _ = await cloud.call("POST", K, version="2.35",
                                         json={"keypair": {"name": name}})
        assert code == 201, body
    code, body, _ = await cloud.call("GET", f"{K}?limit=2", version="2.35")
    assert code == 200
    assert [k["keypair"]["name"] for k in body["keypairs"]] == ["kp-a", "kp-b"]
    (link,) = body["keypairs_links"]
    assert link["rel"] == "next" and "marker=kp-b" in link["href"] and "limit=2" in link["href"]
    code, body, _ = await cloud.call("GET", link["href"][len(cloud.base):], version="2.35")
    assert [k["keypair"]["name"] for k in body["keypairs"]] == ["kp-c"]
    assert "keypairs_links" not in body  # a short page is the last
    code, body, _ = await cloud.call("GET", f"{K}?limit=2", version="2.34")
    assert len(body["keypairs"]) == 3 and "keypairs_links" not in body  # no paging before 2.35
    for query in ("marker=nope", "limit=-1", "limit=x"):
        code, body, _ = await cloud.call("GET", f"{K}?{query}", version="2.35")
        assert code == 400 and list(body) == ["badRequest"], query


async def test_hypervisors_page_by_id(cloud: Cloud) -> None:
    for path in (H, f"{H}/detail"):
        code, body, _ = await cloud.call("GET", f"{path}?limit=1", version="2.33")
        assert code == 200 and len(body["hypervisors"]) == 1, body
        node = body["hypervisors"][0]
        (link,) = body["hypervisors_links"]
        assert f"marker={node['id']}" in link["href"] and path.split("/v2.1/")[1] in link["href"]
        code, body, _ = await cloud.call("GET", link["href"][len(cloud.base):], version="2.33")
        assert code == 200 and body["hypervisors"] == []
        code, body, _ = await cloud.call("GET", f"{path}?marker=999999", version="2.33")
        assert code == 400
        code, body, _ = await cloud.call("GET", f"{path}?limit=1", version="2.32")
        assert "hypervisors_links" not in body  # no paging before 2.33
    code, body, _ = await cloud.call("GET", f"{H}?limit=1", version="2.53")
    uuid = body["hypervisors"][0]["id"]
    assert f"marker={uuid}" in body["hypervisors_links"][0]["href"]  # uuids from 2.53
    code, body, _ = await cloud.call("GET", f"{H}?marker={uuid}", version="2.53")
    assert code == 200 and body["hypervisors"] == []
