"""os-quota-class-sets: the default class sets every project's defaults (and so what a create
is held to), other classes are kept but change nothing; admin only; the keys of each
microversion, checked with tempest's own schemas (2.1, 2.50, 2.57)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import pytest
from harness.api import BOOT_IMAGE, running_cloud
from harness.api import ApiCloud as Cloud
from tempest.lib.api_schema.response.compute.v2_1 import quota_classes as tempest_v2_1
from tempest.lib.api_schema.response.compute.v2_50 import quota_classes as tempest_v2_50
from tempest.lib.api_schema.response.compute.v2_57 import quota_classes as tempest_v2_57

Q = "/compute/v2.1/os-quota-class-sets"


async def put_class(cloud: Cloud, name: str, values: dict[str, Any], version: str = "2.1",
                    token: str | None = None) -> tuple[int, Any]:
    code, body, _ = await cloud.call("PUT", f"{Q}/{name}", version=version, token=token,
                                     json={"quota_class_set": values})
    return code, body


async def test_default_class_sets_every_projects_defaults(cloud: Cloud) -> None:
    code, body, _ = await cloud.call("GET", f"{Q}/default")
    assert code == 200
    jsonschema.validate(body, tempest_v2_1.get_quota_class_set["response_body"])
    assert body["quota_class_set"]["id"] == "default"
    assert body["quota_class_set"]["instances"] == 10  # Nova's built-in default

    code, body = await put_class(cloud, "default", {"instances": 2, "cores": "8"})
    assert code == 200, body
    jsonschema.validate(body, tempest_v2_1.update_quota_class_set["response_body"])
    assert (body["quota_class_set"]["instances"], body["quota_class_set"]["cores"]) == (2, 8)
    project = cloud.admin_project
    for path in (f"{project}/defaults", project):
        code, body, _ = await cloud.call("GET", f"/compute/v2.1/os-quota-sets/{path}")
        assert code == 200 and body["quota_set"]["instances"] == 2, path
    server = {"name": "many", "imageRef": BOOT_IMAGE, "flavorRef": "1"}
    code, body, _ = await cloud.call("POST", "/compute/v2.1/servers", json={"server": {
        **server, "min_count": 3}})
    assert code == 403 and "instances" in body["forbidden"]["message"], body

    # A project's own limit still wins over the class.
    code, _, _ = await cloud.call("PUT", f"/compute/v2.1/os-quota-sets/{project}",
                                  json={"quota_set": {"instances": 5}})
    assert code == 200
    code, body, _ = await cloud.call("POST", "/compute/v2.1/servers", json={"server": {
        **server, "min_count": 3}})
    assert code == 202, body


async def test_other_classes_are_kept_and_change_nothing(cloud: Cloud) -> None:
    code, body = await put_class(cloud, "gold", {"instances": 50, "server_groups": 3})
    assert code == 200, body
    assert "server_groups" not in body["quota_class_set"]  # shown from 2.50 only
    code, body, _ = await cloud.call("GET", f"{Q}/gold")
    assert body["quota_class_set"]["instances"] == 50
    code, body, _ = await cloud.call("GET", f"{Q}/default")
    assert body["quota_class_set"]["instances"] == 10


@pytest.mark.parametrize("values", [
    {"instances": -2}, {"instances": "many"}, {"instances": 2**31}, {"bogus": 1},
    {"force": True},  # a quota set's option, not a class's
])
async def test_bad_updates_change_nothing(cloud: Cloud, values: dict[str, Any]) -> None:
    code, body = await put_class(cloud, "default", values)
    assert code == 400 and list(body) == ["badRequest"], body
    code, body, _ = await cloud.call("GET", f"{Q}/default")
    assert body["quota_class_set"]["instances"] == 10


async def test_admin_only_and_bounded_names(cloud: Cloud) -> None:
    member, _ = await cloud.user_token("qc-user", ("member", "reader"))
    code, body, _ = await cloud.call("GET", f"{Q}/default", token=member)
    assert code == 403 and list(body) == ["forbidden"]
    code, body = await put_class(cloud, "default", {"instances": 1}, token=member)
    assert code == 403
    code, body, _ = await cloud.call("GET", f"{Q}/{'x' * 256}")
    assert code == 400 and list(body) == ["badRequest"]


@pytest.mark.usefixtures("unreleased_microversions")
async def test_keys_of_2_50_and_2_57(tmp_path: Path) -> None:
    async with running_cloud(tmp_path, api={"max_microversion": "2.57"}) as cloud:
        code, body = await put_class(cloud, "default", {"floating_ips": 1}, version="2.50")
        assert code == 400  # the network keys went at 2.50
        code, body = await put_class(cloud, "default", {"server_groups": 4}, version="2.50")
        assert code == 200, body
        jsonschema.validate(body, tempest_v2_50.update_quota_class_set["response_body"])
        assert body["quota_class_set"]["server_groups"] == 4
        code, body, _ = await cloud.call("GET", f"{Q}/default", version="2.57")
        jsonschema.validate(body, tempest_v2_57.get_quota_class_set["response_body"])
        code, body = await put_class(cloud, "default", {"injected_files": 1}, version="2.57")
        assert code == 400
