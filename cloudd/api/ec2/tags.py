"""CreateTags, DeleteTags, DescribeTags on instances and images (one project's own tags)."""

from __future__ import annotations

import time
from typing import Any

from cloudd.api.ec2 import ids
from cloudd.api.ec2.context import Ec2Request, filter_matches
from cloudd.api.ec2.xml import Ec2Error, invalid, missing
from cloudd.api.image import records
from cloudd.db import Executor

MAX_TAGS = 50  # per resource, as AWS
_KINDS = {"i": ids.INSTANCE, "ami": ids.IMAGE, "aki": ids.IMAGE, "ari": ids.IMAGE}
_TYPE_NAMES = {ids.INSTANCE: "instance", ids.IMAGE: "image"}


async def tags_of(db: Executor, project_id: str, uuids: list[str]) -> dict[str, dict[str, str]]:
    """uuid -> {key: value} of the project's tags on those resources."""
    result: dict[str, dict[str, str]] = {uuid: {} for uuid in uuids}
    if not uuids:
        return result
    rows = await db.fetch("SELECT resource_uuid, tag_key, tag_value FROM ec2_tags"
                          " WHERE project_id = $1 ORDER BY tag_key", project_id)
    for row in rows:
        if row["resource_uuid"] in result:
            result[row["resource_uuid"]][row["tag_key"]] = row["tag_value"]
    return result


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
        owner = await req.db.fetchval("SELECT project_id FROM instances WHERE uuid = $1"
                                      " AND deleted = 0", uuid)
    else:
        owner = await req.db.fetchval("SELECT owner FROM images WHERE id = $1", uuid)
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
                await tx.execute("DELETE FROM ec2_tags WHERE resource_uuid = $1 AND tag_key = $2",
                                 uuid, key)
                await tx.execute(
                    "INSERT INTO ec2_tags (resource_uuid, resource_kind, project_id, tag_key,"
                    " tag_value, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
                    uuid, kind, req.project_id, key, value or "", time.time())
            count = await tx.fetchval("SELECT count(*) FROM ec2_tags WHERE resource_uuid = $1",
                                      uuid)
            if int(count or 0) > MAX_TAGS:
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
            await req.db.execute("DELETE FROM ec2_tags WHERE resource_uuid = $1", uuid)
        for key, value in pairs:
            # With a value, only a tag holding that value goes (AWS's rule).
            if value is None:
                await req.db.execute("DELETE FROM ec2_tags WHERE resource_uuid = $1"
                                     " AND tag_key = $2", uuid, key)
            else:
                await req.db.execute("DELETE FROM ec2_tags WHERE resource_uuid = $1"
                                     " AND tag_key = $2 AND tag_value = $3", uuid, key, value)
    return {"return": True}


async def describe_tags(req: Ec2Request) -> dict[str, Any]:
    req.require_read()
    filters = req.params.filters()
    rows = await req.db.fetch(
        "SELECT t.*, m.id AS number FROM ec2_tags t JOIN ec2_id_mappings m"
        " ON m.uuid = t.resource_uuid AND m.kind = t.resource_kind WHERE t.project_id = $1"
        " ORDER BY m.id, t.tag_key", req.project_id)
    items = []
    for row in rows:
        prefix = "i"
        if row["resource_kind"] == ids.IMAGE:
            try:
                prefix = ids.image_prefix(await records.get(req.db, row["resource_uuid"]))
            except records.ImageNotFound:
                continue
        item = {"resourceId": f"{prefix}-{int(row['number']):08x}",
                "resourceType": _TYPE_NAMES[row["resource_kind"]],
                "key": row["tag_key"], "value": row["tag_value"]}
        checks = {"resource-id": item["resourceId"], "resource-type": item["resourceType"],
                  "key": item["key"], "value": item["value"]}
        if all(filter_matches(wanted, checks[name]) for name, wanted in filters.items()
               if name in checks):
            items.append(item)
    return {"tagSet": items}
