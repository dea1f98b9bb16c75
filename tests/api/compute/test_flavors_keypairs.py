"""Flavors CRUD and access rules; keypair import, generation and duplicates; quotas and limits."""

from __future__ import annotations

from typing import Any as Cloud

F = "/compute/v2.1/flavors"
K = "/compute/v2.1/os-keypairs"
ED25519_KEY = ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
                " test@host")


async def test_flavor_crud_by_admin_and_403_for_member(cloud: Cloud) -> None:
    new = {"name": "m1.test", "ram": "256", "vcpus": 1, "disk": 1, "swap": 0,
           "OS-FLV-EXT-DATA:ephemeral": 0, "os-flavor-access:is_public": "True", "id": None}
    status, body, _ = await cloud.call("POST", F, json={"flavor": new})
    assert status == 200, body
    flavor = body["flavor"]
    assert flavor["ram"] == 256 and flavor["swap"] == "" and isinstance(flavor["id"], str)
    status, body, _ = await cloud.call("GET", f"{F}/{flavor['id']}")
    assert body["flavor"]["name"] == "m1.test"
    assert (await cloud.call("GET", f"{F}/m1.test"))[0] == 404  # name lookups fall back to lists
    status, body, _ = await cloud.call("GET", f"{F}/detail?minRam=4096")
    assert {f["name"] for f in body["flavors"]} == {"m1.medium", "m1.large", "m1.xlarge"}
    assert (await cloud.call("POST", F, json={"flavor": new}))[0] == 409
    specs = f"{F}/{flavor['id']}/os-extra_specs"
    status, body, _ = await cloud.call("POST", specs, json={"extra_specs": {"hw:cpu": "2"}})
    assert status == 200
    assert (await cloud.call("GET", f"{specs}/hw:cpu"))[1] == {"hw:cpu": "2"}
    member, _ = await cloud.user_token("demo", ("member", "reader"))
    assert (await cloud.call("POST", specs, token=member, json={"extra_specs": {"a": "b"}}))[0] == 403
    assert (await cloud.call("POST", F, token=member, json={"flavor": new}))[0] == 403
    assert (await cloud.call("DELETE", f"{F}/{flavor['id']}", token=member))[0] == 403
    status, body, _ = await cloud.call("GET", F, token=member)
    assert status == 200 and "m1.test" in {f["name"] for f in body["flavors"]}
    assert (await cloud.call("DELETE", f"{F}/{flavor['id']}"))[0] == 202
    assert (await cloud.call("GET", f"{F}/{flavor['id']}"))[0] == 404
    bad = {**new, "ram": -1}
    assert (await cloud.call("POST", F, json={"flavor": bad}))[0] == 400


async def test_keypairs(cloud: Cloud) -> None:
    status, body, _ = await cloud.call("POST", K, json={"keypair": {"name": "imported",
                                                                   "public_key": ED25519_KEY}})
    assert status == 200, body  # 2.1
    assert body["keypair"]["fingerprint"].count(":") == 15 and "private_key" not in body["keypair"]
    status, body, _ = await cloud.call("POST", K, version="2.2", json={"keypair": {"name": "gen"}})
    assert status == 201 and body["keypair"]["type"] == "ssh"
    assert "OPENSSH PRIVATE KEY" in body["keypair"]["private_key"]
    assert body["keypair"]["public_key"].startswith("ssh-ed25519 ")
    status, body, _ = await cloud.call("POST", K, json={"keypair": {"name": "gen"}})
    assert status == 409 and "conflictingRequest" in body
    for bad in ({"name": "bad/name"}, {"name": ""}, {"name": "x", "public_key": "not a key"},
                {"name": "x", "public_key": "ssh-rsa AAAA\nssh-rsa BBBB"}, {"name": "x", "y": 1}):
        status, body, _ = await cloud.call("POST", K, json={"keypair": bad})
        assert status == 400, bad
    status, body, _ = await cloud.call("GET", K)
    assert sorted(k["keypair"]["name"] for k in body["keypairs"]) == ["gen", "imported"]
    status, body, _ = await cloud.call("GET", f"{K}/gen")
    assert body["keypair"]["name"] == "gen" and "user_id" in body["keypair"]
    assert (await cloud.call("DELETE", f"{K}/gen", version="2.2"))[0] == 204
    assert (await cloud.call("GET", f"{K}/gen"))[0] == 404


async def test_quotas_limits_and_misc(cloud: Cloud) -> None:
    _, body, _ = await cloud.call("GET", f"/compute/v2.1/os-quota-sets/{cloud.admin_project}")
    assert body["quota_set"]["instances"] == 10 and body["quota_set"]["cores"] == 20
    _, body, _ = await cloud.call("GET", "/compute/v2.1/limits")
    absolute = body["limits"]["absolute"]
    assert absolute["maxTotalInstances"] == 10 and absolute["totalInstancesUsed"] == 0
    assert "maxImageMeta" in absolute
    _, body, _ = await cloud.call("GET", "/compute/v2.1/limits", version="2.39")
    assert "maxImageMeta" not in body["limits"]["absolute"]
    _, body, _ = await cloud.call("GET", "/compute/v2.1/extensions")
    assert "Hosts" in {e["name"] for e in body["extensions"]}
    assert (await cloud.call("GET", "/compute/v2.1/extensions/os-consoles"))[0] == 200
    _, body, _ = await cloud.call("GET", "/compute/v2.1/os-availability-zone")
    assert body["availabilityZoneInfo"][0]["zoneName"] == "nova"
    for path in ("os-services", "os-hypervisors", "os-hypervisors/detail",
                 "os-hypervisors/statistics", "os-availability-zone/detail"):
        assert (await cloud.call("GET", f"/compute/v2.1/{path}"))[0] == 200, path
