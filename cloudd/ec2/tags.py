"""`ec2_tags`: a project's tags on its instances and images (CreateTags, DescribeTags, ...)."""

from __future__ import annotations

import time
from dataclasses import dataclass

from cloudd.db import Executor


@dataclass(frozen=True)
class ResourceTag:
    """A tag with the number of its resource's EC2 id (`ec2_id_mappings.id`)."""
    resource_uuid: str
    resource_kind: str
    key: str
    value: str
    number: int


async def tags_of(db: Executor, project_id: str, uuids: list[str]) -> dict[str, dict[str, str]]:
    """uuid -> {key: value} of the project's tags on those resources (keys in order)."""
    result: dict[str, dict[str, str]] = {uuid: {} for uuid in uuids}
    if not uuids:
        return result
    rows = await db.fetch("SELECT resource_uuid, tag_key, tag_value FROM ec2_tags"
                          " WHERE project_id = $1 ORDER BY tag_key", project_id)
    for row in rows:
        if row["resource_uuid"] in result:
            result[row["resource_uuid"]][row["tag_key"]] = row["tag_value"]
    return result


async def put(db: Executor, uuid: str, kind: str, project_id: str, key: str, value: str) -> None:
    """Set tag `key` of the resource to `value` (replacing the key's earlier value)."""
    await db.execute("DELETE FROM ec2_tags WHERE resource_uuid = $1 AND tag_key = $2", uuid, key)
    await add(db, uuid, kind, project_id, key, value)


async def add(db: Executor, uuid: str, kind: str, project_id: str, key: str, value: str) -> None:
    """A new tag on a resource that has none under `key` (a new instance's launch tags)."""
    await db.execute(
        "INSERT INTO ec2_tags (resource_uuid, resource_kind, project_id, tag_key, tag_value,"
        " created_at) VALUES ($1, $2, $3, $4, $5, $6)",
        uuid, kind, project_id, key, value, time.time())


async def count_on(db: Executor, uuid: str) -> int:
    return int(await db.fetchval("SELECT count(*) FROM ec2_tags WHERE resource_uuid = $1",
                                 uuid) or 0)


async def remove_all(db: Executor, uuid: str) -> None:
    await db.execute("DELETE FROM ec2_tags WHERE resource_uuid = $1", uuid)


async def remove(db: Executor, uuid: str, key: str, value: str | None = None) -> None:
    """Tag `key` of the resource; with `value`, only if it holds that value (AWS's rule)."""
    if value is None:
        await db.execute("DELETE FROM ec2_tags WHERE resource_uuid = $1 AND tag_key = $2",
                         uuid, key)
    else:
        await db.execute("DELETE FROM ec2_tags WHERE resource_uuid = $1"
                         " AND tag_key = $2 AND tag_value = $3", uuid, key, value)


async def of_project(db: Executor, project_id: str) -> list[ResourceTag]:
    """The project's tags, by their resource's EC2 number, then key."""
    rows = await db.fetch(
        "SELECT t.*, m.id AS number FROM ec2_tags t JOIN ec2_id_mappings m"
        " ON m.uuid = t.resource_uuid AND m.kind = t.resource_kind WHERE t.project_id = $1"
        " ORDER BY m.id, t.tag_key", project_id)
    return [ResourceTag(resource_uuid=r["resource_uuid"], resource_kind=r["resource_kind"],
                        key=r["tag_key"], value=r["tag_value"], number=int(r["number"]))
            for r in rows]
