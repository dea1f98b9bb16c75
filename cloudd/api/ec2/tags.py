"""CreateTags, DeleteTags, DescribeTags on instances and images (one project's own tags)."""

from __future__ import annotations

from typing import Any

from cloudd.api.ec2 import ids
from cloudd.api.ec2.context import Ec2Request, filter_matches
from cloudd.api.ec2.xml import Ec2Error, invalid, missing
from cloudd.compute import instances
from cloudd.db import Executor
from cloudd.ec2 import tags as tag_store
from cloudd.image import records

MAX_TAGS = 50  # per resource, as AWS
_KINDS = {"i": ids.INSTANCE, "ami": ids.IMAGE, "aki": ids.IMAGE, "ari": ids.IMAGE}
_TYPE_NAMES = {ids.INSTANCE: "instance", ids.IMAGE: "image"}


async def tags_of(db: Executor, project_id: str, uuids: list[str]) -> dict[str, dict[str, str]]:
    """uuid -> {key: value} of the project's tags on those resources."""
    return await tag_store.tags_of(db, project_id, uuids)


def tag_set(tags: dict[str, str]) -> list[dict[str, str]] | None:
    return [{"key": k, "value": v} for k, v in tags.items()] or None


def tag_filter_ok(filters: dict[str, list[str]], tags: dict[str, str]) -> bool:
    """The `tag:K`, `tag-key` and `tag-value` filters of the Describe calls."""
    for name, wanted in filters.items():
        if name.startswith("tag:"):
            key = name[4:]
            if key not in tags or not filter_matches(wanted, tags[key]):
                return False
        elif name == "tag-key" and not filter_matches(wanted, list(tags)):
            return False
        elif name == "tag-value" and not filter_matches(wanted, list(tags.values())):
            return False
    return True


async def _resource(req: Ec2Request, ec2: str) -> tuple[str, str]:
    """(kind, uuid) of a taggable resource the project owns."""
    kind = _KINDS.get(ec2.partition("-")[0])
    if kind is None:
        raise invalid(f"Tagging is not supported for resource {ec2}")
    uuid = await ids.uuid_for(req.db, kind, ec2)
    if kind == ids.INSTANCE:
        owner = await instances.project_of(req.db, uuid, include_deleted=False)
    else:
        owner = await records.owner_of(req.db, uuid)
    if owner != req.project_id:
        raise ids.not_found(kind, ec2)
    return kind, uuid


def _tag_params(req: Ec2Request) -> list[tuple[str, str | None]]:
    pairs = []
    for member in req.params.members("Tag"):
        key = member.get("Key")
        if not key:
            raise missing("Tag.N.Key")
        if len(key) > 128 or key.startswith("aws:"):
            raise invalid(f"Tag key {key!r} is too long or uses the reserved prefix aws:")
        pairs.append((key, member.get("Value")))
    return pairs


async def create_tags(req: Ec2Request) -> dict[str, Any]:
    req.require_act()
    resources = req.params.strings("ResourceId")
    if not resources:
        raise missing("ResourceId")
    pairs = _tag_params(req)
    targets = [await _resource(req, ec2) for ec2 in resources]
    async with req.db.transaction() as tx:
        for kind, uuid in targets:
            for key, value in pairs:
                await tag_store.put(tx, uuid, kind, req.project_id, key, value or "")
            if await tag_store.count_on(tx, uuid) > MAX_TAGS:
                raise Ec2Error("TagLimitExceeded", f"A resource may have at most {MAX_TAGS} tags")
    return {"return": True}


async def delete_tags(req: Ec2Request) -> dict[str, Any]:
    req.require_act()
    resources = req.params.strings("ResourceId")
    if not resources:
        raise missing("ResourceId")
    pairs = _tag_params(req)
    for ec2 in resources:
        _, uuid = await _resource(req, ec2)
        if not pairs:
            await tag_store.remove_all(req.db, uuid)
        for key, value in pairs:
            # With a value, only a tag holding that value goes (AWS's rule).
            await tag_store.remove(req.db, uuid, key, value)
    return {"return": True}


async def describe_tags(req: Ec2Request) -> dict[str, Any]:
    req.require_read()
    filters = req.params.filters()
    items = []
    for tag in await tag_store.of_project(req.db, req.project_id):
        prefix = "i"
        if tag.resource_kind == ids.IMAGE:
            try:
                prefix = ids.image_prefix(await records.get(req.db, tag.resource_uuid))
            except records.ImageNotFound:
                continue
        item = {"resourceId": f"{prefix}-{tag.number:08x}",
                "resourceType": _TYPE_NAMES[tag.resource_kind],
                "key": tag.key, "value": tag.value}
        checks = {"resource-id": item["resourceId"], "resource-type": item["resourceType"],
                  "key": item["key"], "value": item["value"]}
        if all(filter_matches(wanted, checks[name]) for name, wanted in filters.items()
               if name in checks):
            items.append(item)
    return {"tagSet": items}
