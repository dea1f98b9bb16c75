"""Server tags (Nova's Tag objects): every statement on `instance_tags`."""

from __future__ import annotations

from collections.abc import Iterable

from cloudd.db import Database, Executor


async def tags_of(db: Executor, uuids: list[str]) -> dict[str, list[str]]:
    """Each of `uuids`' tags, sorted (an untagged server: []), in one query."""
    found: dict[str, list[str]] = {uuid: [] for uuid in uuids}
    if not uuids:
        return found
    marks = ", ".join(f"${n}" for n in range(1, len(uuids) + 1))
    rows = await db.fetch(f"SELECT instance_uuid, tag FROM instance_tags WHERE instance_uuid"
                          f" IN ({marks}) ORDER BY tag", *uuids)
    for row in rows:
        found[row["instance_uuid"]].append(row["tag"])
    return found


async def replace_tags(db: Database, uuid: str, tags: Iterable[str]) -> None:
    """The server's tags become exactly `tags` (PUT /servers/{id}/tags)."""
    async with db.transaction() as tx:
        await tx.execute("DELETE FROM instance_tags WHERE instance_uuid = $1", uuid)
        for tag in sorted(set(tags)):
            await tx.execute("INSERT INTO instance_tags (instance_uuid, tag) VALUES ($1, $2)",
                             uuid, tag)


async def add_tag(db: Database, uuid: str, tag: str, limit: int) -> bool | None:
    """Add one tag: True if added, False if the server had it, None when the server already
    has `limit` tags."""
    async with db.transaction() as tx:
        rows = await tx.fetch("SELECT tag FROM instance_tags WHERE instance_uuid = $1", uuid)
        present = {row["tag"] for row in rows}
        if tag in present:
            return False
        if len(present) >= limit:
            return None
        await tx.execute("INSERT INTO instance_tags (instance_uuid, tag) VALUES ($1, $2)",
                         uuid, tag)
        return True


async def delete_tag(db: Executor, uuid: str, tag: str) -> bool:
    """Remove one tag; False if the server did not have it."""
    return await db.execute("DELETE FROM instance_tags WHERE instance_uuid = $1 AND tag = $2",
                            uuid, tag) > 0


async def delete_all_tags(db: Executor, uuid: str) -> None:
    await db.execute("DELETE FROM instance_tags WHERE instance_uuid = $1", uuid)
