"""createBackup: a snapshot of type backup on a real agent (fake driver), then Nova's rotation
once it is uploaded: of the server's active backups of that type, the newest `rotation` stay."""

from __future__ import annotations

from typing import Any

import pytest
from harness.api import ApiCloud as Cloud
from harness.api import action
from harness.api import active_server as server

from .test_images import IMAGES
from .test_servers_and_snapshots import _wait_active, _wait_task_done

S = "/compute/v2.1/servers"


async def backup(cloud: Cloud, server_id: str, name: str, kind: str, rotation: Any) -> str:
    """One backup to its end (image active, server idle); its image id."""
    code, body, _ = await cloud.call("POST", f"{S}/{server_id}/action", version="2.45", json={
        "createBackup": {"name": name, "backup_type": kind, "rotation": rotation}})
    assert code == 202, body
    await _wait_task_done(cloud, server_id)
    return str(body["image_id"])


async def backups_of(cloud: Cloud, server_id: str) -> dict[str, tuple[str, str]]:
    """name -> (backup_type, status) of the server's backup images."""
    code, body, _ = await cloud.call("GET", f"{IMAGES}?image_type=backup")
    assert code == 200
    return {image["name"]: (image["backup_type"], image["status"]) for image in body["images"]
            if image.get("instance_uuid") == server_id}


async def test_rotation_keeps_the_newest_of_each_type(cloud: Cloud) -> None:
    server_id = (await server(cloud))["id"]
    first = await backup(cloud, server_id, "daily-1", "daily", 2)
    image = await _wait_active(cloud, first)
    assert (image["image_type"], image["backup_type"]) == ("backup", "daily")
    await backup(cloud, server_id, "weekly-1", "weekly", 1)
    await backup(cloud, server_id, "daily-2", "daily", "2")  # Nova takes digits as a string
    assert set(await backups_of(cloud, server_id)) == {"daily-1", "daily-2", "weekly-1"}
    await backup(cloud, server_id, "daily-3", "daily", 2)
    assert await backups_of(cloud, server_id) == {
        "daily-2": ("daily", "active"), "daily-3": ("daily", "active"),
        "weekly-1": ("weekly", "active")}
    code, _, _ = await cloud.call("GET", f"{IMAGES}/{first}")
    assert code == 404  # rotated out, its data too
    code, body, _ = await cloud.call("GET", f"{S}/{server_id}/os-instance-actions")
    assert [a["action"] for a in body["instanceActions"]].count("createBackup") == 4


async def test_rotation_zero_leaves_none_and_no_location(cloud: Cloud) -> None:
    server_id = (await server(cloud))["id"]
    await backup(cloud, server_id, "old", "nightly", 5)
    _, headers = await action(cloud, server_id, {"createBackup": {
        "name": "gone", "backup_type": "nightly", "rotation": 0}})
    assert "Location" not in headers  # below 2.45, Nova gives one only for rotation > 0
    await _wait_task_done(cloud, server_id)
    assert await backups_of(cloud, server_id) == {}
    _, headers = await action(cloud, server_id, {"createBackup": {
        "name": "kept", "backup_type": "nightly", "rotation": 1}})
    assert headers["Location"].startswith(f"{cloud.base}/image/v2/images/")
    await _wait_active(cloud, headers["Location"].rsplit("/", 1)[-1])


@pytest.mark.parametrize("bad", [
    {"name": "b", "backup_type": "daily"},  # rotation is required
    {"name": "b", "rotation": 1},  # so is backup_type
    {"name": "b", "backup_type": "daily", "rotation": -1},
    {"name": "b", "backup_type": "daily", "rotation": "one"},
    {"name": "b", "backup_type": "daily", "rotation": 1.5},
    {"name": "", "backup_type": "daily", "rotation": 1},
    {"name": "b", "backup_type": "daily", "rotation": 1, "extra": True},
    {"name": "b", "backup_type": "daily", "rotation": 1, "metadata": {"k": 1}},
])
async def test_bad_bodies_make_no_image(cloud: Cloud, bad: dict[str, Any]) -> None:
    server_id = (await server(cloud))["id"]
    await action(cloud, server_id, {"createBackup": bad}, expect=400)
    assert await backups_of(cloud, server_id) == {}


async def test_other_projects_cannot_back_up(cloud: Cloud) -> None:
    server_id = (await server(cloud))["id"]
    body = {"createBackup": {"name": "b", "backup_type": "daily", "rotation": 1}}
    other, _ = await cloud.user_token("backup-other", ("member", "reader"))
    code, _, _ = await cloud.call("POST", f"{S}/{server_id}/action", token=other, json=body)
    assert code == 404
    assert await backups_of(cloud, server_id) == {}
