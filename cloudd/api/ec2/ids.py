"""Stable EC2 ids for the objects the Compute and Image APIs name by uuid (ec2-s3.md §6).

`i-%08x` / `ami-`, `aki-`, `ari-%08x` / `sg-%08x`: the number is the id of the object's row in
`ec2_id_mappings`, made on first sight and never reused, so one object always has the same EC2
id and the Compute API's uuid and the EC2 id name the same server.
"""

from __future__ import annotations

import time
from typing import Any

from cloudd.api.ec2.xml import Ec2Error
from cloudd.db import DuplicateError, Executor

INSTANCE, IMAGE, SECURITY_GROUP = "instance", "image", "security_group"
_PREFIXES = {INSTANCE: ("i",), IMAGE: ("ami", "aki", "ari"), SECURITY_GROUP: ("sg",)}
_NOT_FOUND = {INSTANCE: ("InvalidInstanceID", "The instance ID '{}' does not exist"),
              IMAGE: ("InvalidAMIID", "The image id '[{}]' does not exist"),
              SECURITY_GROUP: ("InvalidGroup", "The security group '{}' does not exist")}


def image_prefix(image: dict[str, Any]) -> str:
    """`aki`/`ari` for kernel/ramdisk images (by container format, as Nova), else `ami`."""
    fmt = image.get("container_format") or image.get("disk_format")
    return fmt if fmt in ("aki", "ari") else "ami"


async def number_for(db: Executor, kind: str, uuid: str) -> int:
    """The mapping row's id for (kind, uuid), created on first sight."""
    found = await db.fetchval("SELECT id FROM ec2_id_mappings WHERE kind = $1 AND uuid = $2",
                              kind, uuid)
    if found is None:
        try:
            await db.execute("INSERT INTO ec2_id_mappings (kind, uuid, created_at)"
                             " VALUES ($1, $2, $3)", kind, uuid, time.time())
        except DuplicateError:  # made by a concurrent request: theirs is the id
            pass
        found = await db.fetchval("SELECT id FROM ec2_id_mappings WHERE kind = $1 AND uuid = $2",
                                  kind, uuid)
    return int(found)


async def ec2_id(db: Executor, kind: str, uuid: str, prefix: str | None = None) -> str:
    return f"{prefix or _PREFIXES[kind][0]}-{await number_for(db, kind, uuid):08x}"


async def many_ec2_ids(db: Executor, kind: str, uuids: list[str]) -> dict[str, int]:
    """uuid -> number for many objects in one query (plus an insert per new one)."""
    numbers: dict[str, int] = {}
    if uuids:
        rows = await db.fetch("SELECT uuid, id FROM ec2_id_mappings WHERE kind = $1", kind)
        wanted = set(uuids)
        numbers = {r["uuid"]: int(r["id"]) for r in rows if r["uuid"] in wanted}
    for uuid in uuids:
        if uuid not in numbers:
            numbers[uuid] = await number_for(db, kind, uuid)
    return numbers


def not_found(kind: str, ec2: str) -> Ec2Error:
    code, message = _NOT_FOUND[kind]
    return Ec2Error(f"{code}.NotFound", message.format(ec2))


async def uuid_for(db: Executor, kind: str, ec2: str) -> str:
    """The uuid an EC2 id names; `<Code>.Malformed` or `<Code>.NotFound` otherwise."""
    prefix, _, number = ec2.partition("-")
    if prefix not in _PREFIXES[kind] or not number:
        raise Ec2Error(f"{_NOT_FOUND[kind][0]}.Malformed", f"Invalid id: \"{ec2}\"")
    try:
        value = int(number, 16)
    except ValueError:
        raise Ec2Error(f"{_NOT_FOUND[kind][0]}.Malformed", f"Invalid id: \"{ec2}\"") from None
    uuid = await db.fetchval("SELECT uuid FROM ec2_id_mappings WHERE kind = $1 AND id = $2",
                             kind, value)
    if uuid is None:
        raise not_found(kind, ec2)
    return str(uuid)
