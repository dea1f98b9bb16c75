"""`ec2_id_mappings`: the number behind an EC2 id, made on first sight and never reused.

(kind, uuid) -> id; the API's `cloudd.api.ec2.ids` formats it (`i-%08x`, ...) and parses it back.
"""

from __future__ import annotations

import time

from cloudd.db import DuplicateError, Executor


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


async def numbers_for(db: Executor, kind: str, uuids: list[str]) -> dict[str, int]:
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


async def uuid_of(db: Executor, kind: str, number: int) -> str | None:
    """The uuid the number of `kind` names, None if none."""
    uuid = await db.fetchval("SELECT uuid FROM ec2_id_mappings WHERE kind = $1 AND id = $2",
                             kind, number)
    return None if uuid is None else str(uuid)
