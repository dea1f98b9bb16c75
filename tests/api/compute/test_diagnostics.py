"""GET /servers/{id}/diagnostics: the host's counters for a running guest, admin only, in the
hypervisor's flat form below 2.48 and Nova's standard form from 2.48 (checked with tempest's
own v2_48 schema, which allows no other key). The real driver's counters:
tests/compute/test_libvirt_driver.py and test_libvirt_network.py."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest
from harness.api import ApiCloud as Cloud
from harness.api import active_server, wait_status
from tempest.lib.api_schema.response.compute.v2_48 import servers as tempest_v2_48

from cloudd.agent.service import AgentService
from cloudd.rpc.contracts.compute import Diagnostics, NicDiagnostics

S = "/compute/v2.1/servers"
STANDARD_KEYS = {"state", "driver", "hypervisor", "hypervisor_os", "uptime", "config_drive",
                 "num_cpus", "num_nics", "num_disks", "memory_details", "cpu_details",
                 "nic_details", "disk_details"}
NIC_KEYS = {"mac_address", "rx_octets", "rx_errors", "rx_drop", "rx_packets", "rx_rate",
            "tx_octets", "tx_errors", "tx_drop", "tx_packets", "tx_rate"}
DISK_KEYS = {"read_bytes", "read_requests", "write_bytes", "write_requests", "errors_count"}


async def diagnostics(cloud: Cloud, server_id: str, version: str = "2.48",
                      token: str | None = None) -> tuple[int, Any]:
    code, body, _ = await cloud.call("GET", f"{S}/{server_id}/diagnostics", version=version,
                                     token=token)
    return code, body


async def test_standard_diagnostics_describe_the_guest(cloud: Cloud) -> None:
    server = await active_server(cloud)
    code, flavor, _ = await cloud.call("GET", "/compute/v2.1/flavors/1")
    assert code == 200
    code, body = await diagnostics(cloud, server["id"])
    assert code == 200, body
    assert set(body) == STANDARD_KEYS
    jsonschema.validate(body, tempest_v2_48.show_server_diagnostics["response_body"])
    assert (body["state"], body["driver"], body["config_drive"]) == ("running", "libvirt", False)
    assert body["num_cpus"] == flavor["flavor"]["vcpus"] == len(body["cpu_details"])
    assert body["memory_details"]["maximum"] == flavor["flavor"]["ram"]
    assert isinstance(body["uptime"], int) and 0 <= body["uptime"] < 60
    macs = [a["OS-EXT-IPS-MAC:mac_addr"] for net in server["addresses"].values() for a in net]
    assert [nic["mac_address"] for nic in body["nic_details"]] == macs
    assert body["num_nics"] == len(macs)
    assert all(set(nic) == NIC_KEYS for nic in body["nic_details"])
    assert body["num_disks"] == len(body["disk_details"]) >= 1
    assert all(set(disk) == DISK_KEYS for disk in body["disk_details"])


async def test_legacy_diagnostics_below_2_48(cloud: Cloud) -> None:
    server = await active_server(cloud)
    code, body = await diagnostics(cloud, server["id"], version="2.47")
    assert code == 200, body
    code, flavor, _ = await cloud.call("GET", "/compute/v2.1/flavors/1")
    assert body["memory"] == flavor["flavor"]["ram"] * 1024  # KiB, as libvirt counts
    assert "cpu0_time" in body and "vda_read" in body and "state" not in body


async def test_diagnostics_are_for_admins_and_running_guests(cloud: Cloud) -> None:
    server = await active_server(cloud)
    member, _ = await cloud.user_token("diag-other", ("member", "reader"))
    code, body = await diagnostics(cloud, server["id"], token=member)
    assert code == 403 and list(body) == ["forbidden"], body
    code, body = await diagnostics(cloud, "8a3c1d2e-0000-4000-8000-0000000000ff")
    assert code == 404 and list(body) == ["itemNotFound"]
    code, body = await diagnostics(cloud, "not-a-uuid")
    assert code == 404 and list(body) == ["itemNotFound"]
    code, _, _ = await cloud.call("POST", f"{S}/{server['id']}/action", json={"os-stop": None})
    assert code == 202
    await wait_status(cloud, server["id"], "SHUTOFF")
    code, body = await diagnostics(cloud, server["id"])
    assert code == 409 and list(body) == ["conflictingRequest"], body


async def test_a_hosts_bad_answer_is_refused(cloud: Cloud, monkeypatch: pytest.MonkeyPatch) \
        -> None:
    """A host's reply is parsed like any input from it: out-of-bounds values are a 409 that
    names the bad result, never passed on (nor a 500)."""
    server = await active_server(cloud)
    driver = cloud.host.get(AgentService).driver

    async def hostile(uuid: str) -> Diagnostics:  # model_construct: no validation on this side
        return Diagnostics.model_construct(
            state="running", driver="libvirt", memory_stats={"x" * 100: 1},
            cpu_details=[], nic_details=[NicDiagnostics.model_construct(
                device="tap0", mac_address="<script>")], disk_details=[])

    monkeypatch.setattr(driver, "get_diagnostics", hostile)
    code, body = await diagnostics(cloud, server["id"])
    assert code == 409 and "invalid result" in body["conflictingRequest"]["message"], body
