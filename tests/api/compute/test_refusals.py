"""What cloudd cannot do yet is refused with a 400 that says so, and nothing is booted:
volumes (boot from volume, a volume or snapshot mapping), disks other than the boot image's,
config drives, file injection (personality) and device tags. The image mapping every
`openstack server create` sends is still taken."""

from __future__ import annotations

from typing import Any

import pytest
from harness.api import BOOT_IMAGE, wait_status
from harness.api import ApiCloud as Cloud

S = "/compute/v2.1/servers"
IMAGE_BDM = {"uuid": BOOT_IMAGE, "boot_index": 0, "source_type": "image",
             "destination_type": "local", "delete_on_termination": True}


@pytest.mark.parametrize(("extra", "version", "says"), [
    ({"block_device_mapping_v2": [{**IMAGE_BDM, "destination_type": "volume",
                                   "volume_size": 20}]}, "2.47", "block storage"),
    ({"block_device_mapping_v2": [IMAGE_BDM, {"uuid": BOOT_IMAGE, "source_type": "volume",
                                              "destination_type": "volume", "boot_index": 1}]},
     "2.47", "block storage"),
    ({"block_device_mapping_v2": [IMAGE_BDM, {"source_type": "blank", "destination_type": "local",
                                              "boot_index": -1, "volume_size": 1}]},
     "2.47", "boot image's block device mapping"),
    ({"config_drive": True}, "2.47", "Config drives"),
    ({"config_drive": "yes"}, "2.1", "Config drives"),
    ({"config_drive": "maybe"}, "2.1", "config_drive"),
    ({"config_drive": ""}, "2.1", "config_drive"),
    ({"personality": [{"path": "/etc/motd", "contents": "aGk="}]}, "2.1", "personality"),
    ({"networks": [{"uuid": "8a3c1d2e-0000-4000-8000-0000000000aa", "tag": "nic1"}]}, "2.47",
     "Device tags"),
])
async def test_refused_with_the_reason(cloud: Cloud, extra: dict[str, Any], version: str,
                                       says: str) -> None:
    code, body, _ = await cloud.call("POST", S, version=version, json={"server": {
        "name": "refused", "imageRef": BOOT_IMAGE, "flavorRef": "1", **extra}})
    assert code == 400 and says in body["badRequest"]["message"], body
    code, body, _ = await cloud.call("GET", S)
    assert code == 200 and body["servers"] == []


@pytest.mark.parametrize("extra", [
    {"block_device_mapping_v2": [IMAGE_BDM]}, {"config_drive": False}, {"config_drive": "False"},
])
async def test_what_clients_send_by_default_still_boots(cloud: Cloud,
                                                        extra: dict[str, Any]) -> None:
    code, body, _ = await cloud.call("POST", S, version="2.47", json={"server": {
        "name": "taken", "imageRef": BOOT_IMAGE, "flavorRef": "1", **extra}})
    assert code == 202, body
    await wait_status(cloud, body["server"]["id"], "ACTIVE")


async def test_rebuild_refuses_file_injection(cloud: Cloud) -> None:
    code, body, _ = await cloud.call("POST", S, json={"server": {
        "name": "rebuilt", "imageRef": BOOT_IMAGE, "flavorRef": "1"}})
    assert code == 202, body
    server_id = body["server"]["id"]
    await wait_status(cloud, server_id, "ACTIVE")
    code, body, _ = await cloud.call("POST", f"{S}/{server_id}/action", json={"rebuild": {
        "imageRef": BOOT_IMAGE, "personality": [{"path": "/etc/motd", "contents": "aGk="}]}})
    assert code == 400 and "personality" in body["badRequest"]["message"], body
    server = await wait_status(cloud, server_id, "ACTIVE")
    assert server["OS-EXT-STS:task_state"] is None  # nothing started
