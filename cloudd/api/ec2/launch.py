"""RunInstances: EC2's parameters translated into a compute ServerCreateRequest (ComputeAPI
resolves and checks its flavor, image, kernel, ramdisk and key pair), with ClientToken
idempotency, security groups and launch-time tags."""

from __future__ import annotations

import asyncio
import base64
import binascii
import time

from cloudd.api.ec2 import ids
from cloudd.api.ec2.context import Ec2Request
from cloudd.api.ec2.xml import Ec2Error, invalid, missing
from cloudd.compute import instances, quota
from cloudd.compute.instances import Instance
from cloudd.ec2 import client_tokens
from cloudd.ec2 import tags as tag_store
from cloudd.frontdoor.compute import ComputeAPI
from cloudd.frontdoor.compute_create import (
    BuildRequest,
    CreateRefused,
    FlavorDisabled,
    FlavorNotFound,
    KeyPairNotFound,
    ServerCreateRequest,
)
from cloudd.image import records
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


async def _groups(req: Ec2Request) -> list[secgroups.SecurityGroup]:
    """SecurityGroup.N (names) and SecurityGroupId.N (sg- ids), default when none."""
    await secgroups.ensure_default(req.db, req.project_id)
    found: dict[int, secgroups.SecurityGroup] = {}
    for name in req.params.strings("SecurityGroup"):
        try:
            group = await secgroups.get_group(req.db, name, req.project_id)
        except secgroups.SecurityGroupNotFound:
            raise Ec2Error("InvalidGroup.NotFound",
                           f"The security group '{name}' does not exist") from None
        found[group.id] = group
    for ec2 in req.params.strings("SecurityGroupId"):
        uuid = await ids.uuid_for(req.db, ids.SECURITY_GROUP, ec2)
        try:
            group = await secgroups.get_group(req.db, uuid, req.project_id)
        except secgroups.SecurityGroupNotFound:
            raise ids.not_found(ids.SECURITY_GROUP, ec2) from None
        found[group.id] = group
    if not found:
        group = await secgroups.get_group(req.db, secgroups.DEFAULT_GROUP, req.project_id)
        found[group.id] = group
    return list(found.values())


def _launch_tags(req: Ec2Request) -> list[tuple[str, str]]:
    tags = []
    for spec in req.params.members("TagSpecification"):
        if spec.get("ResourceType") == "instance":
            tags += [(t.required("Key"), t.get("Value") or "") for t in spec.members("Tag")]
    return tags


async def _create_request(req: Ec2Request) -> ServerCreateRequest:
    params = req.params
    min_count = params.integer("MinCount", 1) or 0
    max_count = params.integer("MaxCount", min_count) or 0
    if min_count < 1 or max_count < min_count:
        raise invalid("MinCount must be at least 1 and no more than MaxCount")
    image_uuid = await _image(req, "ImageId", "ami")
    if image_uuid is None:
        raise missing("ImageId")
    boot_files = {}
    for name, kind, prop in (("KernelId", "aki", "kernel_id"), ("RamdiskId", "ari", "ramdisk_id")):
        if uuid := await _image(req, name, kind):
            boot_files[prop] = uuid
    return ServerCreateRequest(
        name="Server", project_id=req.project_id, user_id=req.context.user_id,
        is_admin=req.context.is_admin,
        flavor_name=params.get("InstanceType") or DEFAULT_INSTANCE_TYPE,
        image_ref=image_uuid, boot_files=boot_files, key_name=params.get("KeyName") or None,
        user_data=user_data(params.get("UserData")), min_count=min_count, max_count=max_count,
        availability_zone=params.get("Placement.AvailabilityZone") or None)


async def _resolve(api: ComputeAPI, create: ServerCreateRequest) -> BuildRequest:
    """ComputeAPI's resolution, its refusals as EC2's errors."""
    try:
        return await api.resolve(create)
    except (FlavorNotFound, FlavorDisabled):
        raise invalid(f"Invalid value '{create.flavor_name}' for InstanceType.") from None
    except KeyPairNotFound as exc:
        raise Ec2Error("InvalidKeyPair.NotFound",
                       f"The key pair '{exc.name}' does not exist") from None
    except CreateRefused as exc:  # the image, kernel or ramdisk
        raise invalid(str(exc)) from None


async def _claim_token(req: Ec2Request, token: str) -> str | None:
    """None if this call owns `token` now; else the reservation an earlier call made with it."""
    if await client_tokens.claim(req.db, req.project_id, token):
        return None
    deadline = time.monotonic() + TOKEN_WAIT
    while time.monotonic() < deadline:  # the first call may still be creating
        found = await client_tokens.reservation_of(req.db, req.project_id, token)
        if found:
            return found
        if found is None:
            raise Ec2Error("IdempotentParameterMismatch", "The client token's first call failed")
        await asyncio.sleep(0.2)
    raise Ec2Error("IdempotentParameterMismatch", "The client token is still in use")


async def launch(req: Ec2Request) -> tuple[list[Instance], list[secgroups.SecurityGroup]]:
    """(instance rows, security groups) of the new reservation, or the ClientToken's earlier one."""
    token = req.params.get("ClientToken")
    if token and (earlier := await _claim_token(req, token)):
        members = await instances.reservation_rows(req.db, req.project_id, earlier)
        groups = await secgroups.groups_of_instance(req.db, members[0].uuid) if members else []
        return members, groups
    try:
        api = ComputeAPI(req.host)
        build = await _resolve(api, await _create_request(req))
        groups = await _groups(req)
        build.security_groups = [g.uuid for g in groups]
        tags = _launch_tags(req)
        try:
            rows = await api.create(build, req.request_id)
        except quota.QuotaExceeded as exc:
            raise Ec2Error("InstanceLimitExceeded", exc.message) from None
    except BaseException:
        if token:
            await client_tokens.release(req.db, req.project_id, token)
        raise
    if token:
        await client_tokens.settle(req.db, req.project_id, token, rows[0].reservation_id)
    boot = {"kernel_id": build.image_properties.get("kernel_id") or "",
            "ramdisk_id": build.image_properties.get("ramdisk_id") or ""}
    return [await _finish(req, row, groups, tags, boot) for row in rows], groups


async def _finish(req: Ec2Request, row: Instance, groups: list[secgroups.SecurityGroup],
                  tags: list[tuple[str, str]], boot: dict[str, str]) -> Instance:
    """Name the server after its EC2 id (what `openstack server list` then shows), record its
    kernel and ramdisk, and tag it (ComputeAPI.create put it in its groups)."""
    ec2 = await ids.ec2_id(req.db, ids.INSTANCE, row.uuid)
    row = await instances.update(req.db, row.uuid, {"name": ec2, "hostname": ec2, **boot})
    for key, value in tags:
        await tag_store.add(req.db, row.uuid, ids.INSTANCE, req.project_id, key, value)
    return row
