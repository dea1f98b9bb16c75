"""The rebuild action as Nova documents it: a real admin password, the fields it applies, and
each field refused below (or above) its microversion."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from harness.api import BOOT_IMAGE, running_cloud, wait_status
from harness.api import ApiCloud as Cloud

from cloudd.compute import instances

S = "/compute/v2.1/servers"


@pytest.fixture
async def cloud257(tmp_path: Path, unreleased_microversions: None) -> AsyncIterator[Cloud]:
    """A cloud configured to advertise 2.57, so rebuild's key_name and user_data can be asked."""
    async with running_cloud(tmp_path, api={"max_microversion": "2.57"}) as running:
        yield running


async def active_server(cloud: Cloud, **extra: Any) -> str:
    code, body, _ = await cloud.call("POST", S, json={"server": {
        "name": "rb", "imageRef": BOOT_IMAGE, "flavorRef": "1", **extra}})
    assert code == 202, body
    await wait_status(cloud, body["server"]["id"], "ACTIVE")
    return str(body["server"]["id"])


async def rebuild(cloud: Cloud, server_id: str, args: dict[str, Any],
                  version: str | None = None) -> tuple[int, Any]:
    code, body, _ = await cloud.call("POST", f"{S}/{server_id}/action", version=version,
                                     json={"rebuild": {"imageRef": BOOT_IMAGE, **args}})
    return code, body


async def test_rebuild_applies_fields_and_answers_a_generated_password(cloud: Cloud) -> None:
    server_id = await active_server(cloud, metadata={"old": "1"})
    code, body = await rebuild(cloud, server_id, {
        "name": "rebuilt-name", "metadata": {"role": "db"}, "accessIPv4": "192.0.2.7",
        "accessIPv6": "2001:db8::7", "preserve_ephemeral": True})
    assert code == 202, body
    server = body["server"]
    password = server["adminPass"]
    assert password != "rebuilt" and len(password) == 12
    assert not set(password) & set("01lIO")  # Nova's generator avoids look-alikes
    assert server["name"] == "rebuilt-name" and server["metadata"] == {"role": "db"}
    assert server["accessIPv4"] == "192.0.2.7" and server["accessIPv6"] == "2001:db8::7"
    assert "key_name" not in server and "user_data" not in server  # 2.54 / 2.57 keys
    shown = await wait_status(cloud, server_id, "ACTIVE")
    assert shown["name"] == "rebuilt-name" and shown["accessIPv4"] == "192.0.2.7"
    code, body = await rebuild(cloud, server_id, {"adminPass": "chosen-one"})
    assert code == 202 and body["server"]["adminPass"] == "chosen-one"
    await wait_status(cloud, server_id, "ACTIVE")
    other = (await rebuild(cloud, server_id, {}))[1]
    assert other["server"]["adminPass"] != password  # a new one each time


@pytest.mark.parametrize(("args", "version"), [
    ({"key_name": None}, "2.47"),  # key_name from 2.54
    ({"user_data": "aGk="}, "2.47"),  # user_data from 2.57
    ({"description": "d"}, "2.1"),  # description from 2.19
    ({"name": None}, "2.1"),
    ({"name": " pad "}, "2.1"),
    ({"name": "x" * 256}, "2.1"),
    ({"metadata": None}, "2.1"),
    ({"metadata": {"k": 1}}, "2.1"),
    ({"accessIPv4": "2001:db8::1"}, "2.1"),
    ({"accessIPv6": "not-an-ip"}, "2.1"),
    ({"preserve_ephemeral": "maybe"}, "2.1"),
    ({"imageRef": "not-a-uuid"}, "2.1"),
    ({"imageRef": 12}, "2.1"),
    ({"bogus": 1}, "2.1"),
])
async def test_rebuild_refuses_bad_or_early_fields(cloud: Cloud, args: dict[str, Any],
                                                   version: str) -> None:
    server_id = await active_server(cloud)
    code, body = await rebuild(cloud, server_id, args, version)
    assert code == 400, (args, body)
    assert list(body) == ["badRequest"]


async def test_rebuild_body_must_be_an_object(cloud: Cloud) -> None:
    server_id = await active_server(cloud)
    bad: Any
    for bad in (None, [], "x", {}):
        code, body, _ = await cloud.call("POST", f"{S}/{server_id}/action",
                                         json={"rebuild": bad})
        assert code == 400 and list(body) == ["badRequest"], (bad, body)


async def test_rebuild_key_name_and_user_data_at_their_microversions(cloud257: Cloud) -> None:
    cloud = cloud257
    code, body, _ = await cloud.call("POST", "/compute/v2.1/os-keypairs",
                                     json={"keypair": {"name": "k1"}})
    assert code == 200, body
    key = body["keypair"]
    server_id = await active_server(cloud)
    user_data = base64.b64encode(b"#!/bin/sh\necho hi\n").decode()
    code, body = await rebuild(cloud, server_id, {"key_name": "k1", "user_data": user_data},
                               "2.57")
    assert code == 202, body
    assert body["server"]["key_name"] == "k1" and body["server"]["user_data"] == user_data
    await wait_status(cloud, server_id, "ACTIVE")
    code, body, _ = await cloud.call("GET", f"{S}/{server_id}", version="2.3")
    assert body["server"]["key_name"] == "k1"
    assert body["server"]["OS-EXT-SRV-ATTR:user_data"] == user_data
    assert (await instances.get(cloud.db, server_id)).key_data == key["public_key"]
    # null removes both
    code, body = await rebuild(cloud, server_id, {"key_name": None, "user_data": None}, "2.57")
    assert code == 202, body
    assert body["server"]["key_name"] is None and body["server"]["user_data"] is None
    await wait_status(cloud, server_id, "ACTIVE")
    # key_name at 2.54 but user_data not until 2.57; personality is gone at 2.57
    code, body = await rebuild(cloud, server_id, {"key_name": "k1"}, "2.54")
    assert code == 202 and "user_data" not in body["server"], body
    await wait_status(cloud, server_id, "ACTIVE")
    for args, version in (({"user_data": user_data}, "2.56"),
                          ({"personality": []}, "2.57"),
                          ({"key_name": "no-such-key"}, "2.57"),
                          ({"user_data": "not base64!"}, "2.57"),
                          ({"user_data": base64.b64encode(b"x" * 65536).decode()}, "2.57")):
        code, body = await rebuild(cloud, server_id, args, version)
        assert code == 400 and list(body) == ["badRequest"], (args, body)


async def test_rebuild_of_a_missing_or_busy_server(cloud: Cloud) -> None:
    code, body = await rebuild(cloud, "8a3c1d2e-0000-4000-8000-0000000000ff", {})
    assert code == 404 and list(body) == ["itemNotFound"]
    server_id = await active_server(cloud)
    code, _, _ = await cloud.call("POST", f"{S}/{server_id}/action", json={"pause": None})
    assert code == 202
    await wait_status(cloud, server_id, "PAUSED")
    code, body = await rebuild(cloud, server_id, {})  # Nova rebuilds ACTIVE, SHUTOFF, ERROR
    assert code == 409 and list(body) == ["conflictingRequest"], body


async def test_no_admin_password_when_disabled(tmp_path: Path) -> None:
    """[api] enable_instance_password = false: neither create nor rebuild shows adminPass."""
    async with running_cloud(tmp_path, api={"enable_instance_password": "false"}) as cloud:
        code, body, _ = await cloud.call("POST", S, json={"server": {
            "name": "np", "imageRef": BOOT_IMAGE, "flavorRef": "1", "adminPass": "given"}})
        assert code == 202 and "adminPass" not in body["server"], body
        server_id = body["server"]["id"]
        await wait_status(cloud, server_id, "ACTIVE")
        code, body = await rebuild(cloud, server_id, {"adminPass": "given"})
        assert code == 202 and "adminPass" not in body["server"], body
