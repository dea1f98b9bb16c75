"""RunInstances: validate EC2's parameters into a compute BuildRequest, with ClientToken
idempotency, security groups and launch-time tags."""

from __future__ import annotations

import asyncio
import base64
import binascii
import time
from typing import Any

from cloudd.api.compute import flavor_access
from cloudd.api.ec2 import ids
from cloudd.api.ec2.context import Ec2Request
from cloudd.api.ec2.xml import Ec2Error, invalid, missing
from cloudd.api.image import records
from cloudd.api.image.for_compute import BootImageError, check_boot_files, check_boot_image
from cloudd.compute import instances, quota
from cloudd.compute.api import BuildRequest, ComputeAPI
from cloudd.db import DuplicateError
from cloudd.network import secgroups

DEFAULT_INSTANCE_TYPE = "m1.small"  # Nova's default_instance_type
TOKEN_WAIT = 30.0  # seconds a repeated ClientToken waits for the first call's instances


def user_data(text: str | None) -> str | None:
    """UserData is base64 (botocore encodes it); kept base64, as Nova stores it."""
    if not text:
        return None
    try:
        base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise invalid("Invalid BASE64 encoding of user data") from None
    if len(text) > 65535:
        raise invalid("User data is limited to 65535 bytes of base64")
    return text


async def _flavor(req: Ec2Request) -> dict[str, Any]:
    name = req.params.get("InstanceType") or DEFAULT_INSTANCE_TYPE
    row = await req.db.fetchrow("SELECT * FROM flavors WHERE name = $1 AND deleted = 0", name)
    if row is None or not await flavor_access.may_use(req.db, row, req.context) or row["disabled"]:
        raise invalid(f"Invalid value '{name}' for InstanceType.")
    return row


async def _image(req: Ec2Request, name: str, kind: str) -> str | None:
    """The uuid of the visible image an ami-/aki-/ari- parameter names (None if absent)."""
    ec2 = req.params.get(name)
    if not ec2:
        return None
    uuid = await ids.uuid_for(req.db, ids.IMAGE, ec2)
    image = await records.find_visible(req.db, uuid, req.project_id, req.context.is_admin)
    if image is None:
        raise ids.not_found(ids.IMAGE, ec2)
    if kind != "ami" and ids.image_prefix(image) != kind:
        raise invalid(f"{ec2} is not a {kind} image")
    return uuid


async def _groups(req: Ec2Request) -> list[dict[str, Any]]:
    """SecurityGroup.N (names) and SecurityGroupId.N (sg- ids), default when none."""
    await secgroups.ensure_default(req.db, req.project_id)
    found: dict[int, dict[str, Any]] = {}
    for name in req.params.strings("SecurityGroup"):
        try:
            group = await secgroups.get_group(req.db, name, req.project_id)
        except secgroups.SecurityGroupNotFound:
            raise Ec2Error("InvalidGroup.NotFound",
                           f"The security group '{name}' does not exist") from None
        found[group["id"]] = group
    for ec2 in req.params.strings("SecurityGroupId"):
        uuid = await ids.uuid_for(req.db, ids.SECURITY_GROUP, ec2)
        try:
            group = await secgroups.get_group(req.db, uuid, req.project_id)
        except secgroups.SecurityGroupNotFound:
            raise ids.not_found(ids.SECURITY_GROUP, ec2) from None
        found[group["id"]] = group
    if not found:
        group = await secgroups.get_group(req.db, secgroups.DEFAULT_GROUP, req.project_id)
        found[group["id"]] = group
    return list(found.values())


def _launch_tags(req: Ec2Request) -> list[tuple[str, str]]:
    tags = []
    for spec in req.params.members("TagSpecification"):
        if spec.get("ResourceType") == "instance":
            tags += [(t.required("Key"), t.get("Value") or "") for t in spec.members("Tag")]
    return tags


async def _build_request(req: Ec2Request) -> BuildRequest:
    params = req.params
    min_count = params.integer("MinCount", 1) or 0
    max_count = params.integer("MaxCount", min_count) or 0
    if min_count < 1 or max_count < min_count:
        raise invalid("MinCount must be at least 1 and no more than MaxCount")
    image_uuid = await _image(req, "ImageId", "ami")
    if image_uuid is None:
        raise missing("ImageId")
    flavor = await _flavor(req)
    try:
        image = await check_boot_image(req.db, image_uuid, req.project_id, req.context.is_admin,
                                       flavor)
    except BootImageError as exc:
        raise invalid(str(exc)) from None
    properties = dict(image["properties"])
    for name, kind, prop in (("KernelId", "aki", "kernel_id"), ("RamdiskId", "ari", "ramdisk_id")):
        if uuid := await _image(req, name, kind):
            properties[prop] = uuid
    try:
        await check_boot_files(req.db, properties, req.project_id)
    except BootImageError as exc:
        raise invalid(str(exc)) from None
    key_name, key_data = params.get("KeyName"), None
    if key_name:
        key_data = await req.db.fetchval("SELECT public_key FROM key_pairs WHERE user_id = $1"
                                         " AND name = $2", req.context.user_id, key_name)
        if key_data is None:
            raise Ec2Error("InvalidKeyPair.NotFound", f"The key pair '{key_name}' does not exist")
    return BuildRequest(
        name="Server", flavor=flavor, project_id=req.project_id, user_id=req.context.user_id,
        image_ref=image_uuid, image_properties=properties, min_count=min_count,
        max_count=max_count, key_name=key_name or None, key_data=key_data,
        user_data=user_data(params.get("UserData")),
        availability_zone=params.get("Placement.AvailabilityZone") or None)


async def _claim_token(req: Ec2Request, token: str) -> str | None:
    """None if this call owns `token` now; else the reservation an earlier call made with it."""
    try:
        await req.db.execute("INSERT INTO ec2_client_tokens (project_id, client_token,"
                             " reservation_id, created_at) VALUES ($1, $2, '', $3)",
                             req.project_id, token, time.time())
        return None
    except DuplicateError:
        pass
    deadline = time.monotonic() + TOKEN_WAIT
    while time.monotonic() < deadline:  # the first call may still be creating
        found = await req.db.fetchval("SELECT reservation_id FROM ec2_client_tokens WHERE"
                                      " project_id = $1 AND client_token = $2",
                                      req.project_id, token)
        if found:
            return str(found)
        if found is None:
            raise Ec2Error("IdempotentParameterMismatch", "The client token's first call failed")
        await asyncio.sleep(0.2)
    raise Ec2Error("IdempotentParameterMismatch", "The client token is still in use")


async def launch(req: Ec2Request) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(instance rows, security groups) of the new reservation, or the ClientToken's earlier one."""
    token = req.params.get("ClientToken")
    if token and (earlier := await _claim_token(req, token)):
        rows = await req.db.fetch("SELECT * FROM instances WHERE project_id = $1 AND"
                                  " reservation_id = $2 ORDER BY launch_index",
                                  req.project_id, earlier)
        members = [instances.decode(r) for r in rows]
        groups = await secgroups.groups_of_instance(req.db, members[0]["uuid"]) if members else []
        return members, groups
    try:
        build = await _build_request(req)
        groups = await _groups(req)
        build.security_groups = [g["uuid"] for g in groups]
        tags = _launch_tags(req)
        try:
            rows = await ComputeAPI(req.host).create(build, req.request_id)
        except quota.QuotaExceeded as exc:
            raise Ec2Error("InstanceLimitExceeded", exc.message) from None
    except BaseException:
        if token:
            await req.db.execute("DELETE FROM ec2_client_tokens WHERE project_id = $1 AND"
                                 " client_token = $2", req.project_id, token)
        raise
    if token:
        await req.db.execute("UPDATE ec2_client_tokens SET reservation_id = $1 WHERE"
                             " project_id = $2 AND client_token = $3",
                             rows[0]["reservation_id"], req.project_id, token)
    boot = {"kernel_id": build.image_properties.get("kernel_id") or "",
            "ramdisk_id": build.image_properties.get("ramdisk_id") or ""}
    return [await _finish(req, row, groups, tags, boot) for row in rows], groups


async def _finish(req: Ec2Request, row: dict[str, Any], groups: list[dict[str, Any]],
                  tags: list[tuple[str, str]], boot: dict[str, str]) -> dict[str, Any]:
    """Name the server after its EC2 id (what `openstack server list` then shows), record its
    kernel and ramdisk, and tag it (ComputeAPI.create put it in its groups)."""
    ec2 = await ids.ec2_id(req.db, ids.INSTANCE, row["uuid"])
    row = await instances.update(req.db, row["uuid"], {"name": ec2, "hostname": ec2, **boot})
    for key, value in tags:
        await req.db.execute(
            "INSERT INTO ec2_tags (resource_uuid, resource_kind, project_id, tag_key, tag_value,"
            " created_at) VALUES ($1, $2, $3, $4, $5, $6)",
            row["uuid"], ids.INSTANCE, req.project_id, key, value, time.time())
    return row
