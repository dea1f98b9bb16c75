"""The Image v2 API over HTTP: discovery, create/upload/download, JSON patch, policy, paging."""

from __future__ import annotations

import asyncio
import hashlib
import os
from pathlib import Path
from typing import Any

from harness.api import ApiCloud as Cloud
from harness.api import patch_headers

from cloudd.config import resolve_paths, validate
from cloudd.image.data import import_image
from cloudd.image.records import BUCKET, IMAGE_SIZE_CAP, image_store
from cloudd.objectstore.storage import ObjectStore

IMAGES = "/image/v2/images"


async def create(cloud: Cloud, token: str | None = None, expect: int = 201, **body: Any) -> Any:
    code, image, _ = await cloud.call("POST", IMAGES, token=token, json=body)
    assert code == expect, (code, image)
    return image


async def upload(cloud: Cloud, image_id: str, data: bytes, token: str | None = None) -> int:
    code, _, _ = await cloud.call("PUT", f"{IMAGES}/{image_id}/file", token=token, data=data,
                                  headers={"Content-Type": "application/octet-stream"})
    return code


async def download(cloud: Cloud, image_id: str, token: str | None = None) \
        -> tuple[int, bytes, Any]:
    async with cloud.session.get(f"{cloud.base}{IMAGES}/{image_id}/file",
                                 headers={"X-Auth-Token": token or cloud.admin_token}) as resp:
        return resp.status, await resp.read(), resp.headers


async def test_discovery_needs_no_token(cloud: Cloud) -> None:
    for path in ("/image", "/image/"):
        async with cloud.session.get(cloud.base + path) as resp:
            assert resp.status == 300
            body = await resp.json()
            assert resp.headers["X-OpenStack-Request-ID"].startswith("req-")
    current = [v for v in body["versions"] if v["status"] == "CURRENT"]
    assert len(current) == 1 and current[0]["id"].startswith("v2.")
    assert current[0]["links"][0]["href"] == f"{cloud.base}/image/v2/"
    code, _, _ = await cloud.call("GET", IMAGES, token="bogus")
    assert code == 401


async def test_create_upload_download_patch_delete(cloud: Cloud, tmp_path: Path) -> None:
    properties: dict[str, Any] = {"owner_specified.openstack.md5": "", "hw_rng_model": "virtio"}
    image = await create(cloud, name="disk", disk_format="raw", container_format="bare",
                         **properties)
    assert image["status"] == "queued" and image["visibility"] == "shared"
    assert image["hw_rng_model"] == "virtio" and image["size"] is None
    assert image["owner"] == cloud.admin_project and image["self"] == f"/v2/images/{image['id']}"
    image_id = image["id"]
    code, _, _ = await cloud.call("GET", f"{IMAGES}/{image_id}/file")
    assert code == 204  # no data yet

    data = os.urandom(3 * 1024 * 1024 + 17)
    assert await upload(cloud, image_id, data) == 204
    assert await upload(cloud, image_id, b"again") == 409
    code, shown, _ = await cloud.call("GET", f"{IMAGES}/{image_id}")
    assert shown["status"] == "active" and shown["size"] == len(data)
    assert shown["checksum"] == hashlib.md5(data).hexdigest()
    assert (shown["os_hash_algo"], shown["os_hash_value"]) == \
        ("sha512", hashlib.sha512(data).hexdigest())
    code, body, headers = await download(cloud, image_id)
    assert code == 200 and body == data
    assert headers["Content-MD5"] == shown["checksum"]

    patch = [{"op": "add", "path": "/foo", "value": "bar"},
             {"op": "replace", "path": "/name", "value": "renamed"},
             {"op": "remove", "path": "/hw_rng_model"},
             {"op": "replace", "path": "/min_ram", "value": 64},
             {"op": "replace", "path": "/tags", "value": ["a", "b", "a"]},
             {"op": "replace", "path": "/protected", "value": True}]
    code, patched, _ = await cloud.call("PATCH", f"{IMAGES}/{image_id}", json=patch,
                                        headers=patch_headers())
    assert code == 200, patched
    assert (patched["foo"], patched["name"], patched["min_ram"]) == ("bar", "renamed", 64)
    assert "hw_rng_model" not in patched and patched["tags"] == ["a", "b"]
    bad_patches = [
        ([{"op": "replace", "path": "/status", "value": "active"}], 403),
        ([{"op": "remove", "path": "/name"}], 403),
        ([{"op": "replace", "path": "/nothere", "value": "x"}], 409),
        ([{"op": "add", "path": "/min_ram", "value": "64"}], 400),
        ([{"op": "move", "path": "/foo", "from": "/name"}], 400),
        ([{"op": "add", "path": "/foo", "value": 5}], 400),
        ([{"op": "replace", "path": "/disk_format", "value": "qcow2"}], 403),  # not queued
        ({"op": "add"}, 400),
    ]
    for bad, status in bad_patches:
        code, _, _ = await cloud.call("PATCH", f"{IMAGES}/{image_id}", json=bad,
                                      headers=patch_headers())
        assert code == status, bad
    code, _, _ = await cloud.call("PATCH", f"{IMAGES}/{image_id}", json=patch)  # JSON, not a patch
    assert code == 415

    code, _, _ = await cloud.call("DELETE", f"{IMAGES}/{image_id}")
    assert code == 403  # protected
    await cloud.call("PATCH", f"{IMAGES}/{image_id}", headers=patch_headers(),
                     json=[{"op": "replace", "path": "/protected", "value": False}])
    code, _, _ = await cloud.call("DELETE", f"{IMAGES}/{image_id}")
    assert code == 204
    code, _, _ = await cloud.call("GET", f"{IMAGES}/{image_id}")
    assert code == 404
    store = store_of(tmp_path)
    assert not await store.exists(BUCKET, image_id)


def store_of(state_dir: Path) -> ObjectStore:
    """The image store of the cloud fixture, whose state directory is the test's tmp_path."""
    return image_store(resolve_paths(validate({"default": {"state_dir": str(state_dir)}})))


async def test_bad_create_bodies(cloud: Cloud) -> None:
    for body, status in [
        ({"name": "x", "disk_format": "floppy"}, 400),
        ({"name": "x", "container_format": "zip"}, 400),
        ({"name": "x", "visibility": "everyone"}, 400),
        ({"name": "x", "status": "active"}, 403),
        ({"name": "x", "size": 5}, 403),
        ({"name": "x", "min_ram": -1}, 400),
        ({"name": "x", "protected": "yes"}, 400),
        ({"name": "x", "id": "not-a-uuid"}, 400),
        ({"name": "x", "prop": {"nested": 1}}, 400),
        ({"name": "x" * 256}, 400),
    ]:
        code, resp, _ = await cloud.call("POST", IMAGES, json=body)
        assert code == status, (body, resp)
    code, _, _ = await cloud.call("POST", IMAGES, data=b"not json")
    assert code == 400
    for path in (f"{IMAGES}/not-an-id", f"{IMAGES}/00000000-0000-4000-8000-000000000000"):
        code, _, _ = await cloud.call("GET", path)
        assert code == 404


async def test_visibility_and_roles(cloud: Cloud) -> None:
    other, _ = await cloud.user_token("other", ("member",))
    reader, _ = await cloud.user_token("other", ("reader",))
    private = await create(cloud, name="private-img", visibility="private", disk_format="raw",
                           container_format="bare")
    public = await create(cloud, name="public-img", visibility="public", disk_format="raw",
                          container_format="bare")
    assert await upload(cloud, public["id"], b"public bytes") == 204

    code, _, _ = await cloud.call("GET", f"{IMAGES}/{private['id']}", token=other)
    assert code == 404
    code, listed, _ = await cloud.call("GET", IMAGES, token=other)
    assert sorted(i["name"] for i in listed["images"]) == ["cirros", "public-img"]  # both public
    code, body, _ = await download(cloud, public["id"], token=reader)
    assert (code, body) == (200, b"public bytes")
    refused: list[tuple[str, str, dict[str, Any]]] = [
        ("DELETE", f"{IMAGES}/{public['id']}", {}),
        ("PATCH", f"{IMAGES}/{public['id']}",
         {"json": [{"op": "add", "path": "/x", "value": "y"}], "headers": patch_headers()}),
    ]
    for method, path, kwargs in refused:
        code, _, _ = await cloud.call(method, path, token=other, **kwargs)
        assert code == 403
    assert await upload(cloud, private["id"], b"x", token=other) == 404
    await create(cloud, token=other, expect=403, name="mine", visibility="public")
    await create(cloud, token=reader, expect=403, name="reader's")
    own = await create(cloud, token=other, name="own")
    code, _, _ = await cloud.call("GET", f"{IMAGES}/{own['id']}", token=reader)
    assert code == 200
    code, _, _ = await cloud.call("DELETE", f"{IMAGES}/{own['id']}", token=reader)
    assert code == 403
    code, listed, _ = await cloud.call("GET", IMAGES)  # admin sees every project's images
    assert {"own", "private-img", "public-img"} <= {i["name"] for i in listed["images"]}


async def test_list_filters_sorting_and_paging(cloud: Cloud) -> None:
    ids = {}
    for name in ("c", "a", "e", "b", "d"):
        ids[name] = (await create(cloud, name=name, disk_format="qcow2",
                                  container_format="bare", colour=name, kind="paging"))["id"]
        await asyncio.sleep(0.01)
    seen, path = [], "/v2/images?limit=2&sort=name:asc&kind=paging"
    while path:
        code, page, _ = await cloud.call("GET", "/image" + path)
        assert code == 200 and len(page["images"]) <= 2
        seen += [i["name"] for i in page["images"]]
        path = page.get("next")
    assert seen == ["a", "b", "c", "d", "e"]
    code, page, _ = await cloud.call("GET", f"{IMAGES}?id=in:{ids['a']},{ids['d']}&sort_key=name"
                                     "&sort_dir=asc")
    assert [i["name"] for i in page["images"]] == ["a", "d"]
    code, page, _ = await cloud.call("GET", f"{IMAGES}?name=e")
    assert [i["id"] for i in page["images"]] == [ids["e"]]
    code, page, _ = await cloud.call("GET", f"{IMAGES}?colour=b&status=queued")
    assert [i["name"] for i in page["images"]] == ["b"]
    code, page, _ = await cloud.call("GET", f"{IMAGES}?status=active&kind=paging")
    assert page["images"] == []
    code, page, _ = await cloud.call("GET", f"{IMAGES}?kind=paging")  # default: newest first
    assert [i["name"] for i in page["images"]] == ["d", "b", "e", "a", "c"]
    for bad in ("limit=x", "limit=-1", "marker=nope", "sort=size:sideways", "sort=bogus",
                "visibility=everyone"):
        code, _, _ = await cloud.call("GET", f"{IMAGES}?{bad}")
        assert code == 400, bad


async def test_oversized_upload_is_413_before_reading(cloud: Cloud) -> None:
    image = await create(cloud, name="huge", disk_format="raw", container_format="bare")
    host, port = cloud.base.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write((f"PUT {IMAGES}/{image['id']}/file HTTP/1.1\r\nHost: x\r\n"
                  f"X-Auth-Token: {cloud.admin_token}\r\n"
                  "Content-Type: application/octet-stream\r\n"
                  f"Content-Length: {IMAGE_SIZE_CAP + 1}\r\n\r\n").encode())
    await writer.drain()
    status_line = await asyncio.wait_for(reader.readline(), 10)
    writer.close()
    assert b" 413 " in status_line
    _, shown, _ = await cloud.call("GET", f"{IMAGES}/{image['id']}")
    assert shown["status"] == "queued"  # a failed upload can be retried


async def test_import_image_for_the_manage_cli(cloud: Cloud, tmp_path: Path) -> None:
    path = tmp_path / "cirros.img"
    data = os.urandom(2 * 1024 * 1024 + 5)
    path.write_bytes(data)
    progress: list[tuple[int, int]] = []
    image = await import_image(cloud.db, store_of(tmp_path), path, "cirros",
                               disk_format="raw", public=True,
                               progress=lambda done, total: progress.append((done, total)))
    assert image.status == "active" and image.checksum == hashlib.md5(data).hexdigest()
    assert progress[-1] == (len(data), len(data))
    member, _ = await cloud.user_token("someone", ("member",))
    code, body, _ = await download(cloud, image.id, token=member)
    assert (code, body) == (200, data)
