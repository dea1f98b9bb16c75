"""openstacksdk's network proxy, the legacy Compute proxies at microversion 2.1, the
``networks`` request of a server create, and who sees what."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import openstack
from harness.api import BOOT_IMAGE
from harness.api import ApiCloud as Cloud


async def _server(cloud: Cloud, token: str | None = None, **extra: Any) -> str:
    code, body, _ = await cloud.call("POST", "/compute/v2.1/servers", token=token, json={
        "server": {"name": "vm", "imageRef": BOOT_IMAGE, "flavorRef": "1", **extra}})
    assert code == 202, body
    server_id = str(body["server"]["id"])
    for _ in range(150):
        code, body, _ = await cloud.call("GET", f"/compute/v2.1/servers/{server_id}", token=token)
        if body["server"]["status"] == "ACTIVE":
            return server_id
        await asyncio.sleep(0.1)
    raise AssertionError("server never became ACTIVE")


async def test_openstacksdk_network_proxy(netcloud: Cloud, tmp_path: Path) -> None:
    password = (tmp_path / "admin-password").read_text().strip()

    def steps() -> dict[str, Any]:
        conn = openstack.connect(
            auth_url=f"{netcloud.base}/identity", username="admin", password=password,
            project_name="admin", user_domain_name="Default", project_domain_name="Default",
            region_name="RegionOne", load_yaml_config=False, load_envvars=False)
        net = conn.network.find_network("private", ignore_missing=False)
        public = conn.network.find_network("public", ignore_missing=False)
        server = conn.compute.create_server(name="sdk-vm", image_id=BOOT_IMAGE, flavor_id="1",
                                            networks=[{"uuid": net.id}])
        server = conn.compute.wait_for_server(server, wait=30, interval=0.2)
        (port,) = list(conn.network.ports(device_id=server.id))
        fip = conn.network.create_ip(floating_network_id=public.id)
        fip = conn.network.update_ip(fip, port_id=port.id)
        shown = conn.compute.get_server(server.id)
        group = conn.network.create_security_group(name="sdk-group", description="d")
        rule = conn.network.create_security_group_rule(
            security_group_id=group.id, direction="ingress", protocol="udp",
            port_range_min=53, port_range_max=53, remote_ip_prefix="10.0.0.0/8")
        rules = [r.id for r in conn.network.security_group_rules(security_group_id=group.id)]
        conn.network.delete_security_group_rule(rule)
        conn.network.delete_security_group(group)
        conn.network.delete_ip(fip)
        return {"net": net, "public": public, "subnets": list(conn.network.subnets()),
                "port": port, "fip": fip, "shown": shown, "rule": rule, "rules": rules,
                "groups": [g.name for g in conn.network.security_groups()],
                "ips": list(conn.network.ips()),
                "zones": [z.name for z in conn.network.availability_zones()]}

    out = await asyncio.to_thread(steps)
    assert out["public"].is_router_external and not out["net"].is_router_external
    assert [s.network_id for s in out["subnets"]] == [out["net"].id]
    port = out["port"]
    assert port.device_owner == "compute:nova" and port.mac_address.startswith("fa:16:3e:")
    fixed = port.fixed_ips[0]["ip_address"]
    assert port.fixed_ips[0]["subnet_id"] == out["subnets"][0].id
    assert out["fip"].port_id == port.id and out["fip"].fixed_ip_address == fixed
    kinds = {e["addr"]: e["OS-EXT-IPS:type"] for e in out["shown"].addresses["private"]}
    assert kinds == {fixed: "fixed", out["fip"].floating_ip_address: "floating"}
    assert (out["rule"].protocol, out["rule"].port_range_min, out["rule"].remote_ip_prefix) == (
        "udp", 53, "10.0.0.0/8")
    assert out["rules"] == [out["rule"].id]
    assert "sdk-group" not in out["groups"] and "default" in out["groups"]
    assert out["ips"] == [] and "nova" in out["zones"]


async def test_legacy_proxies_at_2_1(netcloud: Cloud) -> None:
    server_id = await _server(netcloud)
    code, body, _ = await netcloud.call("GET", "/compute/v2.1/os-floating-ip-pools", version="2.1")
    assert (code, body) == (200, {"floating_ip_pools": [{"name": "public"}]})
    code, body, _ = await netcloud.call("POST", "/compute/v2.1/os-floating-ips", version="2.1",
                                        json={"pool": "public"})
    assert code == 200 and body["floating_ip"]["instance_id"] is None
    address = body["floating_ip"]["ip"]
    code, _, _ = await netcloud.call("POST", f"/compute/v2.1/servers/{server_id}/action",
                                     version="2.1", json={"addFloatingIp": {"address": address}})
    assert code == 202
    code, body, _ = await netcloud.call("GET", "/compute/v2.1/os-floating-ips", version="2.1")
    (listed,) = body["floating_ips"]
    assert listed["ip"] == address and listed["instance_id"] == server_id
    assert listed["fixed_ip"].startswith("10.20.0.")
    code, body, _ = await netcloud.call("GET", f"/compute/v2.1/servers/{server_id}", version="2.1")
    assert {"addr": address, "version": 4, "OS-EXT-IPS:type": "floating",
            "OS-EXT-IPS-MAC:mac_addr": body["server"]["addresses"]["private"][0][
                "OS-EXT-IPS-MAC:mac_addr"]} in body["server"]["addresses"]["private"]
    code, body, _ = await netcloud.call("GET", "/compute/v2.1/os-networks", version="2.1")
    assert [(n["label"], n["cidr"]) for n in body["networks"]] == [("private", "10.20.0.0/24")]
    code, body, _ = await netcloud.call("GET", "/compute/v2.1/os-security-groups", version="2.1")
    assert [g["name"] for g in body["security_groups"]] == ["default"]
    code, _, _ = await netcloud.call("POST", f"/compute/v2.1/servers/{server_id}/action",
                                     version="2.1", json={"removeFloatingIp": {"address": address}})
    assert code == 202
    # Gone from 2.36 (resources) and 2.44 (actions), as in Nova.
    code, _, _ = await netcloud.call("GET", "/compute/v2.1/os-floating-ips", version="2.36")
    assert code == 404
    code, _, _ = await netcloud.call("POST", f"/compute/v2.1/servers/{server_id}/action",
                                     version="2.44", json={"addFloatingIp": {"address": address}})
    assert code == 400


async def test_networks_request_on_create(netcloud: Cloud) -> None:
    code, body, _ = await netcloud.call("POST", "/compute/v2.1/servers", json={"server": {
        "name": "x", "imageRef": BOOT_IMAGE, "flavorRef": "1",
        "networks": [{"uuid": "00000000-0000-4000-8000-000000000000"}]}})
    assert code == 400 and "could not be found" in body["badRequest"]["message"]
    code, body, _ = await netcloud.call("POST", "/compute/v2.1/servers", json={"server": {
        "name": "x", "imageRef": BOOT_IMAGE, "flavorRef": "1", "security_groups": [
            {"name": "nope"}]}})
    assert code == 400
    no_nic = await _server(netcloud, networks="none")
    code, body, _ = await netcloud.call("GET", f"/compute/v2.1/servers/{no_nic}")
    assert body["server"]["addresses"] == {}
    auto = await _server(netcloud, networks="auto")
    code, body, _ = await netcloud.call("GET", "/compute/v2.1/servers/detail")
    by_id = {s["id"]: s for s in body["servers"]}
    assert list(by_id[auto]["addresses"]) == ["private"] and by_id[no_nic]["addresses"] == {}
    assert by_id[auto]["security_groups"] == [{"name": "default"}]


async def test_other_projects_see_nothing(netcloud: Cloud) -> None:
    code, body, _ = await netcloud.call("GET", "/network/v2.0/networks?name=public")
    public = body["networks"][0]["id"]
    code, body, _ = await netcloud.call("POST", "/network/v2.0/floatingips",
                                        json={"floatingip": {"floating_network_id": public}})
    assert code == 201
    admin_fip = body["floatingip"]["id"]
    member, _ = await netcloud.user_token("other", ("member", "reader"))
    reader, _ = await netcloud.user_token("other", ("reader",))
    code, body, headers = await netcloud.call("GET", f"/network/v2.0/floatingips/{admin_fip}",
                                              token=member)
    assert code == 404 and body["NeutronError"]["type"] == "FloatingIPNotFound"
    assert headers["X-OpenStack-Request-ID"].startswith("req-")
    code, body, _ = await netcloud.call("GET", "/network/v2.0/floatingips", token=member)
    assert body == {"floatingips": []}
    code, body, _ = await netcloud.call("DELETE", f"/network/v2.0/floatingips/{admin_fip}",
                                        token=member)
    assert code == 404
    code, body, _ = await netcloud.call("POST", "/network/v2.0/floatingips", token=reader,
                                        json={"floatingip": {"floating_network_id": public}})
    assert code == 403 and body["NeutronError"]["type"] == "PolicyNotAuthorized"
    code, body, _ = await netcloud.call(
        "GET", "/network/v2.0/security-groups?fields=id&fields=name", token=member)
    assert [set(g) for g in body["security_groups"]] == [{"id", "name"}]  # its own default
    code, body, _ = await netcloud.call("GET", "/network/v2.0/networks/private")
    assert code == 404  # a name is not an id: clients then list with ?name=
    code, body, _ = await netcloud.call("GET", "/network/v2.0/extensions/no-such")
    assert code == 404
    code, body, _ = await netcloud.call("GET", "/network/v2.0/quotas/" + netcloud.admin_project,
                                        token=member)
    assert code == 403
