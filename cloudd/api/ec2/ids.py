"""Stable EC2 ids for the objects the Compute and Image APIs name by uuid (ec2-s3.md §6).

`i-%08x` / `ami-`, `aki-`, `ari-%08x` / `sg-%08x`: the number is the id of the object's row in
`ec2_id_mappings` (its repository: `cloudd.ec2.ids`), made on first sight and never reused, so
one object always has the same EC2 id and the Compute API's uuid and the EC2 id name the same
server.
"""

from __future__ import annotations

from cloudd.api.ec2.xml import Ec2Error
from cloudd.db import Executor
from cloudd.ec2 import ids as mappings
from cloudd.image.records import Image, ImageFormats

INSTANCE, IMAGE, SECURITY_GROUP = "instance", "image", "security_group"
_PREFIXES = {INSTANCE: ("i",), IMAGE: ("ami", "aki", "ari"), SECURITY_GROUP: ("sg",)}
_NOT_FOUND = {INSTANCE: ("InvalidInstanceID", "The instance ID '{}' does not exist"),
              IMAGE: ("InvalidAMIID", "The image id '[{}]' does not exist"),
              SECURITY_GROUP: ("InvalidGroup", "The security group '{}' does not exist")}


def image_prefix(image: Image | ImageFormats) -> str:
    """`aki`/`ari` for kernel/ramdisk images (by container format, as Nova), else `ami`."""
    fmt = image.container_format or image.disk_format
    return fmt if fmt in ("aki", "ari") else "ami"


async def number_for(db: Executor, kind: str, uuid: str) -> int:
    """The mapping row's id for (kind, uuid), created on first sight."""
    return await mappings.number_for(db, kind, uuid)


async def ec2_id(db: Executor, kind: str, uuid: str, prefix: str | None = None) -> str:
    return f"{prefix or _PREFIXES[kind][0]}-{await number_for(db, kind, uuid):08x}"


async def many_ec2_ids(db: Executor, kind: str, uuids: list[str]) -> dict[str, int]:
    """uuid -> number for many objects in one query (plus an insert per new one)."""
    return await mappings.numbers_for(db, kind, uuids)


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
    uuid = await mappings.uuid_of(db, kind, value)
    if uuid is None:
        raise not_found(kind, ec2)
    return uuid
