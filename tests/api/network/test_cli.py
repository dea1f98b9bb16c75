"""The unmodified openstack CLI against cloudd's Network API and the server addresses."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from harness.api import ApiCloud as Cloud
from harness.clients import openstack_cli as cli


def _types(server: dict[str, Any]) -> dict[str, str]:
    return {entry["addr"]: entry["OS-EXT-IPS:type"]
            for entries in server["addresses"].values() for entry in entries}


async def test_floating_ip_life_with_the_cli(netcloud: Cloud, tmp_path: Path) -> None:
    run = cli(netcloud, tmp_path)

    def steps() -> dict[str, Any]:
        out: dict[str, Any] = {"networks": run("network", "list"),
                               "subnets": run("subnet", "list")}
        out["server"] = run("server", "create", "--image", "cirros", "--flavor", "m1.tiny",
                            "--network", "private", "--wait", "vm1")
        out["fip"] = run("floating", "ip", "create", "public")
        address = out["fip"]["floating_ip_address"]
        run("server", "add", "floating", "ip", "vm1", address, json_out=False)
        out["shown"] = run("server", "show", "vm1")
        out["listed"] = run("floating", "ip", "list")
        return out

    def undo(address: str, fip_id: str) -> dict[str, Any]:
        run("server", "remove", "floating", "ip", "vm1", address, json_out=False)
        out = {"after_remove": run("floating", "ip", "show", fip_id)}
        run("floating", "ip", "delete", address, json_out=False)
        out["after_delete"] = run("floating", "ip", "list")
        return out

    out = await asyncio.to_thread(steps)
    code, body, _ = await netcloud.call("GET", f"/compute/v2.1/servers/{out['server']['id']}")
    out.update(await asyncio.to_thread(undo, out["fip"]["floating_ip_address"], out["fip"]["id"]))
    networks = {n["Name"]: n for n in out["networks"]}
    assert set(networks) == {"private", "public"}
    assert [(s["Network"], s["Subnet"]) for s in out["subnets"]] == [
        (networks["private"]["ID"], "10.20.0.0/24")]
    address = out["fip"]["floating_ip_address"]
    assert address.startswith("203.0.113.") and out["fip"]["floating_network_id"] == \
        networks["public"]["ID"]
    server_id = out["server"]["id"]
    assert code == 200
    types = _types(body["server"])
    fixed = next(a for a, kind in types.items() if kind == "fixed")
    assert fixed.startswith("10.20.0.") and types[address] == "floating"
    assert list(body["server"]["addresses"]) == ["private"]
    assert all(e["OS-EXT-IPS-MAC:mac_addr"].startswith("fa:16:3e:")
               for e in body["server"]["addresses"]["private"])
    assert set(out["shown"]["addresses"]["private"]) == {fixed, address}  # the CLI's view
    (listed,) = out["listed"]
    assert listed["Fixed IP Address"] == fixed and listed["Port"]
    assert out["after_remove"]["port_id"] is None and out["after_remove"]["status"] == "DOWN"
    assert out["after_delete"] == []
    code, body, _ = await netcloud.call("GET", f"/compute/v2.1/servers/{server_id}/ips")
    assert body == {"addresses": {"private": [{"version": 4, "addr": fixed}]}}


async def test_security_groups_with_the_cli(netcloud: Cloud, tmp_path: Path) -> None:
    run = cli(netcloud, tmp_path)

    def steps() -> dict[str, Any]:
        out: dict[str, Any] = {"group": run("security", "group", "create", "web")}
        out["rule"] = run("security", "group", "rule", "create", "--protocol", "tcp",
                          "--dst-port", "22", "web")
        out["rules"] = run("security", "group", "rule", "list", "web")
        out["groups"] = run("security", "group", "list")
        out["server"] = run("server", "create", "--image", "cirros", "--flavor", "m1.tiny",
                            "--network", "private", "--security-group", "web", "--wait", "vm2")
        out["shown"] = run("server", "show", "vm2")
        run("security", "group", "rule", "delete", out["rule"]["id"], json_out=False)
        out["rules_after"] = run("security", "group", "rule", "list", "web")
        return out

    out = await asyncio.to_thread(steps)
    rule = out["rule"]
    assert (rule["protocol"], rule["port_range_min"], rule["port_range_max"],
            rule["direction"], rule["remote_ip_prefix"]) == ("tcp", 22, 22, "ingress", "0.0.0.0/0")
    assert [r["ID"] for r in out["rules"]] == [rule["id"]]
    assert {"default", "web"} <= {g["Name"] for g in out["groups"]}
    assert out["shown"]["security_groups"] == [{"name": "web"}]
    assert out["rules_after"] == []
    # The firewall's view: the server is a member of `web` only.
    members = await netcloud.db.fetch(
        "SELECT g.name FROM security_group_instance_association a JOIN security_groups g"
        " ON g.id = a.security_group_id WHERE a.instance_uuid = $1", out["server"]["id"])
    assert [m["name"] for m in members] == ["web"]


async def test_quota_and_availability_zones_with_the_cli(netcloud: Cloud, tmp_path: Path) -> None:
    run = cli(netcloud, tmp_path)

    def steps() -> dict[str, Any]:
        return {"quota": run("quota", "show"),
                "zones": run("availability", "zone", "list", "--network")}

    out = await asyncio.to_thread(steps)
    quota = {row["Resource"]: row["Limit"] for row in out["quota"]}
    # The network part (Nova's quota at 2.56+ has none of these keys).
    assert (quota["floating_ips"], quota["security_groups"], quota["security_group_rules"]) == (
        10, 10, 20)
    assert (quota["ports"], quota["subnets"], quota["routers"]) == (-1, -1, 0)
    assert {(z["Zone Name"], z["Zone Status"]) for z in out["zones"]} == {("nova", "available")}
