"""rescue and unrescue (Nova's) on a real agent with the fake driver: the server boots the
rescue image (its own, or the one asked for) and is RESCUE, unrescue brings it back ACTIVE;
the image a host may fetch for the rescue is recorded only while it lasts. Refusals: bodies
Nova's schema refuses, an image the caller cannot boot, wrong states, another project."""

from __future__ import annotations

import asyncio

import pytest
from harness.api import BOOT_IMAGE, active_server, wait_status
from harness.api import ApiCloud as Cloud

from cloudd.agent.compute.drivers.fake import FakeDriver
from cloudd.agent.service import AgentService
from cloudd.compute import instances

S = "/compute/v2.1/servers"


def driver(cloud: Cloud) -> FakeDriver:
    fake = cloud.host.get(AgentService).driver
    assert isinstance(fake, FakeDriver)
    return fake


async def act(cloud: Cloud, server_id: str, body: object, token: str | None = None
              ) -> tuple[int, object]:
    code, answer, _ = await cloud.call("POST", f"{S}/{server_id}/action", json=body, token=token)
    return code, answer


async def test_rescue_and_unrescue(cloud: Cloud) -> None:
    server_id = (await active_server(cloud, "broken"))["id"]
    code, body = await act(cloud, server_id, {"rescue": None})
    assert code == 200 and isinstance(body, dict), body
    server = await wait_status(cloud, server_id, "RESCUE")
    assert server["OS-EXT-STS:vm_state"] == "rescued"
    assert driver(cloud).rescue_image(server_id) == BOOT_IMAGE  # its own image
    row = await instances.get(cloud.db, server_id)
    assert row.system_metadata["rescue_image_ref"] == BOOT_IMAGE  # its host may fetch it
    for body in ({"rescue": None}, {"reboot": {"type": "HARD"}}, {"os-stop": None},
                 {"rebuild": {"imageRef": BOOT_IMAGE}}, {"pause": None}):
        code, _ = await act(cloud, server_id, body)
        assert code == 409, body  # not while rescued (tempest's negative rescue tests)
    code, _ = await act(cloud, server_id, {"unrescue": None})
    assert code == 202
    await wait_status(cloud, server_id, "ACTIVE")
    assert driver(cloud).rescue_image(server_id) is None
    for _ in range(100):  # the controller drops the record once the host reports
        row = await instances.get(cloud.db, server_id)
        if "rescue_image_ref" not in row.system_metadata:
            break
        await asyncio.sleep(0.05)
    assert "rescue_image_ref" not in row.system_metadata
    code, _ = await act(cloud, server_id, {"unrescue": None})
    assert code == 409  # not rescued
    _, body, _ = await cloud.call("GET", f"{S}/{server_id}/os-instance-actions")
    assert [a["action"] for a in body["instanceActions"]][:2] == ["unrescue", "rescue"]


async def test_a_stopped_server_with_a_named_image(cloud: Cloud) -> None:
    server_id = (await active_server(cloud, "stopped"))["id"]
    await act(cloud, server_id, {"os-stop": None})
    await wait_status(cloud, server_id, "SHUTOFF")
    code, body = await act(cloud, server_id, {"rescue": {
        "rescue_image_ref": BOOT_IMAGE, "adminPass": "chosen-password"}})
    assert code == 200 and body == {"adminPass": "chosen-password"}, body
    await wait_status(cloud, server_id, "RESCUE")
    await act(cloud, server_id, {"unrescue": None})
    await wait_status(cloud, server_id, "ACTIVE")  # Nova: unrescue always ends ACTIVE


@pytest.mark.parametrize("body", [
    {"rescue": {"rescue_image_ref": "not-a-uuid"}},
    {"rescue": {"rescue_image_ref": "8a3c1d2e-0000-4000-8000-00000000ffff"}},  # no such image
    {"rescue": {"bogus": 1}}, {"rescue": {"adminPass": 5}}, {"rescue": "now"},
])
async def test_refused_rescues(cloud: Cloud, body: dict[str, object]) -> None:
    server_id = (await active_server(cloud, "refused"))["id"]
    code, answer = await act(cloud, server_id, body)
    assert code == 400 and isinstance(answer, dict) and list(answer) == ["badRequest"], answer
    server = await wait_status(cloud, server_id, "ACTIVE")
    assert server["OS-EXT-STS:task_state"] is None
    other, _ = await cloud.user_token("rescue-other", ("member", "reader"))
    code, _ = await act(cloud, server_id, {"rescue": None}, token=other)
    assert code == 404


async def test_rescue_only_with_an_image_the_caller_may_boot(cloud: Cloud) -> None:
    """A student cannot rescue into another project's private image, nor one with no data."""
    student, _ = await cloud.user_token("rescue-student", ("member", "reader"))
    server_id = (await active_server(cloud, "rescuer", token=student))["id"]
    other, _ = await cloud.user_token("rescue-image-owner", ("member", "reader"))
    images = []
    for token in (other, student):
        code, image, _ = await cloud.call("POST", "/image/v2/images", token=token, json={
            "name": "private", "disk_format": "raw", "container_format": "bare"})
        assert code == 201, image
        images.append(image["id"])
    code, _, _ = await cloud.call("PUT", f"/image/v2/images/{images[0]}/file", token=other,
                                  data=b"\0" * 1024,
                                  headers={"Content-Type": "application/octet-stream"})
    assert code == 204  # an active image, private to its project
    for image_id in images:  # another project's; the student's own, still queued
        code, answer = await act(cloud, server_id, {"rescue": {"rescue_image_ref": image_id}},
                                 token=student)
        assert code == 400 and isinstance(answer, dict) and list(answer) == ["badRequest"], answer
    server = await wait_status(cloud, server_id, "ACTIVE")
    assert server["OS-EXT-STS:task_state"] is None
    assert driver(cloud).rescue_image(server_id) is None
