"""Instances as EC2 shows them: state codes, reservations, addresses, groups, tags, filters."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from cloudd.api.ec2 import ids
from cloudd.api.ec2.context import Ec2Request, filter_matches
from cloudd.api.ec2.tags import tag_filter_ok, tag_set, tags_of
from cloudd.api.ec2.xml import invalid, timestamp
from cloudd.compute.instances import Instance
from cloudd.db import Executor
from cloudd.image import records
from cloudd.network import secgroups, store
from cloudd.vocab import states

PENDING, RUNNING, SHUTTING_DOWN, TERMINATED, STOPPING, STOPPED = 0, 16, 32, 48, 64, 80
ROOT_DEVICE = "/dev/sda1"
TERMINATED_VISIBLE_FOR = 3600.0  # seconds a terminated instance still shows, as on AWS


def ec2_state(row: Instance) -> dict[str, Any]:
    """{code, name} (ec2-s3.md §5). A stopping or deleting instance is never `pending`: the
    boto3 waiters treat pending as "still coming up"."""
    vm, task = row.vm_state, row.task_state
    if row.deleted or vm in (states.DELETED, states.SOFT_DELETED):
        return {"code": TERMINATED, "name": "terminated"}
    if task == states.DELETING:
        return {"code": SHUTTING_DOWN, "name": "shutting-down"}
    if vm == states.BUILDING:
        return {"code": PENDING, "name": "pending"}
    if task == states.POWERING_OFF:
        return {"code": STOPPING, "name": "stopping"}
    if vm == states.STOPPED:
        if task == states.POWERING_ON:
            return {"code": PENDING, "name": "pending"}
        return {"code": STOPPED, "name": "stopped"}
    if vm in (states.ACTIVE, states.RESCUED, states.RESIZED):
        return {"code": RUNNING, "name": "running"}
    if vm in (states.SHELVED, states.SHELVED_OFFLOADED):  # Nova's EC2 code: stopped's
        return {"code": STOPPED, "name": "stopped"}
    if vm in (states.PAUSED, states.SUSPENDED):  # Nova's own names (inst_state.py)
        return {"code": STOPPED, "name": "pause" if vm == states.PAUSED else "suspend"}
    return {"code": PENDING, "name": "error"}


async def addresses_of(db: Executor, uuids: list[str]) -> dict[str, tuple[str | None, str | None]]:
    """uuid -> (first fixed IP, its floating IP) in one query."""
    result: dict[str, tuple[str | None, str | None]] = {}
    for row in await store.allocated_addresses(db, uuids):
        fixed, floating = result.get(row.instance_uuid, (None, None))
        result[row.instance_uuid] = (fixed or row.address, floating or row.floating_address)
    return result


async def groups_of(db: Executor, uuids: list[str]) -> dict[str, list[secgroups.SecurityGroup]]:
    """uuid -> its security groups, in one query."""
    return await secgroups.groups_of_instances(db, uuids)


async def group_items(db: Executor, groups: Iterable[secgroups.SecurityGroup]
                      ) -> list[dict[str, str]]:
    return [{"groupId": await ids.ec2_id(db, ids.SECURITY_GROUP, g.uuid),
             "groupName": g.name} for g in groups]


async def image_ec2_ids(db: Executor, uuids: Iterable[str]) -> dict[str, str]:
    """image uuid -> ami-/aki-/ari- id (the prefix from the image's container format)."""
    wanted = sorted({u for u in uuids if u})
    if not wanted:
        return {}
    formats = await records.formats_of(db, wanted)
    prefixes = {uuid: ids.image_prefix(f) for uuid, f in formats.items()}
    numbers = await ids.many_ec2_ids(db, ids.IMAGE, wanted)
    return {u: f"{prefixes.get(u, 'ami')}-{numbers[u]:08x}" for u in wanted}


async def instance_items(req: Ec2Request, rows: list[Instance]) -> list[dict[str, Any]]:
    """The `instancesSet` items of `rows`, with the lookups batched."""
    db = req.db
    uuids = [r.uuid for r in rows]
    numbers = await ids.many_ec2_ids(db, ids.INSTANCE, uuids)
    images = await image_ec2_ids(db, [v for r in rows for v in
                                      (r.image_ref, r.kernel_id, r.ramdisk_id)])
    addresses = await addresses_of(db, uuids)
    groups = await groups_of(db, uuids)
    tags = await tags_of(db, req.project_id, uuids)
    items = []
    for row in rows:
        fixed, floating = addresses.get(row.uuid, (None, None))
        items.append({
            "instanceId": f"i-{numbers[row.uuid]:08x}",
            "imageId": images.get(row.image_ref or ""),
            "instanceState": ec2_state(row),
            "privateDnsName": row.hostname or None,
            "dnsName": floating or fixed,
            "keyName": row.key_name,
            "amiLaunchIndex": row.launch_index,
            "productCodes": [],
            "instanceType": row.flavor.name or None,
            "launchTime": timestamp(row.launched_at or row.created_at),
            "placement": {"availabilityZone": row.availability_zone or "nova",
                          "tenancy": "default"},
            "kernelId": images.get(row.kernel_id or ""),
            "ramdiskId": images.get(row.ramdisk_id or ""),
            "monitoring": {"state": "disabled"},
            "privateIpAddress": fixed,
            "ipAddress": floating or fixed,
            "groupSet": await group_items(db, groups.get(row.uuid, [])),
            "architecture": "x86_64",
            "rootDeviceType": "instance-store",
            "rootDeviceName": ROOT_DEVICE,
            "blockDeviceMapping": [],
            "virtualizationType": "hvm",
            "tagSet": tag_set(tags.get(row.uuid, {})),
        })
    return items


async def reservations(req: Ec2Request, rows: list[Instance]) -> list[dict[str, Any]]:
    """Rows grouped by reservation_id, in the order of their first instance."""
    items = dict(zip((r.uuid for r in rows), await instance_items(req, rows), strict=True))
    grouped: dict[str, list[Instance]] = {}
    for row in rows:
        grouped.setdefault(row.reservation_id or row.uuid, []).append(row)
    result = []
    for reservation_id, members in grouped.items():
        member_items = [items[r.uuid] for r in sorted(members, key=lambda r: r.launch_index)]
        result.append({"reservationId": reservation_id, "ownerId": members[0].project_id,
                       "groupSet": member_items[0]["groupSet"], "instancesSet": member_items})
    return result


# filter name -> the instance item field(s) it compares
_FILTERS: dict[str, Any] = {
    "instance-id": lambda i, r: i["instanceId"],
    "instance-state-name": lambda i, r: i["instanceState"]["name"],
    "instance-state-code": lambda i, r: i["instanceState"]["code"],
    "key-name": lambda i, r: i["keyName"],
    "image-id": lambda i, r: i["imageId"],
    "instance-type": lambda i, r: i["instanceType"],
    "availability-zone": lambda i, r: i["placement"]["availabilityZone"],
    "reservation-id": lambda i, r: r.reservation_id,
    "owner-id": lambda i, r: r.project_id,
    "private-ip-address": lambda i, r: i["privateIpAddress"],
    "ip-address": lambda i, r: i["ipAddress"],
    "private-dns-name": lambda i, r: i["privateDnsName"],
    "kernel-id": lambda i, r: i["kernelId"],
    "ramdisk-id": lambda i, r: i["ramdiskId"],
    "launch-index": lambda i, r: i["amiLaunchIndex"],
    "group-name": lambda i, r: [g["groupName"] for g in i["groupSet"]],
    "instance.group-name": lambda i, r: [g["groupName"] for g in i["groupSet"]],
    "group-id": lambda i, r: [g["groupId"] for g in i["groupSet"]],
    "instance.group-id": lambda i, r: [g["groupId"] for g in i["groupSet"]],
    "architecture": lambda i, r: i["architecture"],
    "root-device-type": lambda i, r: i["rootDeviceType"],
}
_TAG_FILTERS = ("tag-key", "tag-value")


def check_filters(filters: dict[str, list[str]]) -> None:
    for name in filters:
        if name not in _FILTERS and name not in _TAG_FILTERS and not name.startswith("tag:"):
            raise invalid(f"The filter '{name}' is invalid")


def matches(filters: dict[str, list[str]], item: dict[str, Any], row: Instance) -> bool:
    tags = {t["key"]: t["value"] for t in item["tagSet"] or []}
    if not tag_filter_ok(filters, tags):
        return False
    return all(filter_matches(wanted, _FILTERS[name](item, row))
               for name, wanted in filters.items() if name in _FILTERS)
