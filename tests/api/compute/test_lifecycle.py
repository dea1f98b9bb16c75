"""A server's whole life through the REST API, on a real agent with the fake driver."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from harness.api import BOOT_IMAGE, action, wait_status
from harness.api import ApiCloud as Cloud
from harness.clients import openstack_cli as cli_runner


async def test_server_lifecycle_through_the_api(cloud: Cloud) -> None:
    create = {"server": {"name": "web-1", "imageRef": BOOT_IMAGE, "flavorRef": "1",
                         "metadata": {"role": "web"}}}
    code, body, headers = await cloud.call("POST", "/compute/v2.1/servers", json=create)
    assert code == 202, body
    server_id = body["server"]["id"]
    create_request = headers["X-OpenStack-Request-ID"]

    server = await wait_status(cloud, server_id, "ACTIVE")
    assert server["OS-EXT-STS:power_state"] == 1
    assert server["metadata"] == {"role": "web"}

    _, reboot_headers = await action(cloud, server_id, {"reboot": {"type": "HARD"}})
    await wait_status(cloud, server_id, "ACTIVE")
    await action(cloud, server_id, {"os-stop": None})
    await wait_status(cloud, server_id, "SHUTOFF")
    await action(cloud, server_id, {"os-start": None})
    await wait_status(cloud, server_id, "ACTIVE")
    # os-start on an ACTIVE server is a conflict, in Nova's error format.
    conflict, _ = await action(cloud, server_id, {"os-start": None}, expect=409)
    assert "conflictingRequest" in conflict
    await action(cloud, server_id, {"pause": None})
    await wait_status(cloud, server_id, "PAUSED")
    await action(cloud, server_id, {"unpause": None})
    await wait_status(cloud, server_id, "ACTIVE")

    output, _ = await action(cloud, server_id, {"os-getConsoleOutput": {"length": 2}}, expect=200)
    assert len(output["output"].split("\n")) == 2

    code, actions, _ = await cloud.call(
        "GET", f"/compute/v2.1/servers/{server_id}/os-instance-actions")
    assert code == 200
    by_request = {a["request_id"]: a["action"] for a in actions["instanceActions"]}
    assert by_request[create_request] == "create"
    assert by_request[reboot_headers["X-Compute-Request-Id"]] == "reboot"
    code, shown, _ = await cloud.call(
        "GET", f"/compute/v2.1/servers/{server_id}/os-instance-actions/{create_request}",
        version="2.47")
    assert code == 200
    assert [e["event"] for e in shown["instanceAction"]["events"]] == ["compute_build_instance"]

    code, _, _ = await cloud.call("DELETE", f"/compute/v2.1/servers/{server_id}")
    assert code == 204
    await wait_status(cloud, server_id, "DELETED")


async def test_openstack_cli_reads_the_cloud(cloud: Cloud, tmp_path: Path) -> None:
    """The unmodified `openstack` CLI: flavors, services, hypervisors, keypairs, servers."""
    code, body, _ = await cloud.call("POST", "/compute/v2.1/servers", json={"server": {
        "name": "cli-vm", "imageRef": BOOT_IMAGE, "flavorRef": "1"}})
    assert code == 202
    await wait_status(cloud, body["server"]["id"], "ACTIVE")
    run = cli_runner(cloud, tmp_path)

    def run_all() -> dict[str, Any]:
        return {
            "flavors": run("flavor", "list"),
            "services": run("compute", "service", "list"),
            "hypervisors": run("hypervisor", "list"),
            "keypair": run("keypair", "create", "--public-key", str(pubkey), "k1"),
            "keypairs": run("keypair", "list"),
            "servers": run("server", "list"),
        }

    pubkey = tmp_path / "id.pub"
    pubkey.write_text("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB7n8M+yJ1fyoq8AuP0+lqgnQ6hEW7sYdw8Q4Ai8hS6E"
                      " test@cloudd\n")
    out = await asyncio.to_thread(run_all)
    assert {"m1.tiny", "m1.small"} <= {f["Name"] for f in out["flavors"]}
    assert any(s["Binary"] == "cloudd-compute" and s["State"] == "up" for s in out["services"])
    assert len(out["hypervisors"]) == 1
    assert [k["Name"] for k in out["keypairs"]] == ["k1"]
    assert [s["Name"] for s in out["servers"]] == ["cli-vm"]
    assert out["servers"][0]["Status"] == "ACTIVE"


async def test_openstack_cli_server_life(cloud: Cloud, tmp_path: Path) -> None:
    """flavor create/show, server create --wait by image and flavor name, show, reboot --wait,
    stop, start, console log show, availability zone list, server delete --wait."""
    run = cli_runner(cloud, tmp_path)

    def wait_status(name: str, status: str) -> None:
        for _ in range(100):
            if run("server", "show", name)["status"] == status:
                return
            time.sleep(0.2)
        raise AssertionError(f"{name} never reached {status}")

    def life() -> dict[str, Any]:
        out: dict[str, Any] = {}
        out["flavor"] = run("flavor", "create", "--ram", "256", "--vcpus", "1", "--disk", "1",
                            "m1.cli")
        out["flavor_show"] = run("flavor", "show", "m1.cli")
        out["created"] = run("server", "create", "--image", "cirros", "--flavor", "m1.cli",
                             "--wait", "cli-life")
        out["shown"] = run("server", "show", "cli-life")
        run("server", "reboot", "--wait", "cli-life", json_out=False)
        run("server", "stop", "cli-life", json_out=False)
        wait_status("cli-life", "SHUTOFF")
        run("server", "start", "cli-life", json_out=False)
        wait_status("cli-life", "ACTIVE")
        out["log"] = run("console", "log", "show", "cli-life", json_out=False)
        out["zones"] = run("availability", "zone", "list")
        run("server", "delete", "--wait", "cli-life", json_out=False)
        out["after"] = run("server", "list")
        return out

    out = await asyncio.to_thread(life)
    assert out["flavor"]["ram"] == 256 and out["flavor_show"]["name"] == "m1.cli"
    assert out["created"]["status"] == "ACTIVE"
    assert "m1.cli" in str(out["shown"]["flavor"])  # a dict at >= 2.47 (original_name)
    assert "cirros" in str(out["shown"]["image"])
    assert "booted" in out["log"]
    assert any(z["Zone Name"] == "nova" for z in out["zones"])
    assert out["after"] == []
