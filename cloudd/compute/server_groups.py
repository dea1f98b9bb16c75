"""Server groups (tables `instance_groups`, `instance_group_policy`, `instance_group_members`):
every statement on them, returning `ServerGroup` records decoded once (rules parsed).

A group has one policy row, written with it; members join in the transaction that inserts their
instances. Members whose instance was deleted are not counted or shown: the reads join with
`instances` (deleted = 0), as the migration says.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from cloudd.db import Executor


@dataclass(frozen=True)
class ServerGroup:
    id: int
    uuid: str
    name: str
    project_id: str
    user_id: str
    policy: str  # affinity, anti-affinity, soft-affinity, soft-anti-affinity
    rules: dict[str, Any]  # 2.64's rules, e.g. {"max_server_per_host": 2}

    @classmethod
    def from_row(cls, row: Any) -> ServerGroup:
        return cls(id=int(row["id"]), uuid=str(row["uuid"]), name=str(row["name"]),
                   project_id=str(row["project_id"]), user_id=str(row["user_id"]),
                   policy=str(row["policy"]), rules=json.loads(row["rules"] or "{}"))


@dataclass(frozen=True)
class GroupMember:
    """A live member: its instance's uuid and the host it runs on (None while unplaced)."""

    uuid: str
    host: str | None


_SELECT = ("SELECT g.*, p.policy, p.rules FROM instance_groups g"
           " JOIN instance_group_policy p ON p.group_id = g.id")


async def create(tx: Executor, *, uuid: str, name: str, project_id: str, user_id: str,
                 policy: str, rules: dict[str, Any], now: float) -> ServerGroup:
    """Insert the group and its policy; call inside a transaction (the caller's quota check)."""
    group_id = await tx.fetchval(
        "INSERT INTO instance_groups (uuid, name, project_id, user_id, created_at)"
        " VALUES ($1, $2, $3, $4, $5) RETURNING id",
        uuid, name, project_id, user_id, now)
    await tx.execute("INSERT INTO instance_group_policy (group_id, policy, rules)"
                     " VALUES ($1, $2, $3)", group_id, policy, json.dumps(rules))
    row = await tx.fetchrow(f"{_SELECT} WHERE g.id = $1", group_id)
    assert row is not None
    return ServerGroup.from_row(row)


async def get(db: Executor, uuid: str) -> ServerGroup | None:
    row = await db.fetchrow(f"{_SELECT} WHERE g.uuid = $1", uuid)
    return None if row is None else ServerGroup.from_row(row)


async def get_in_project(db: Executor, uuid: str, project_id: str) -> ServerGroup | None:
    row = await db.fetchrow(f"{_SELECT} WHERE g.uuid = $1 AND g.project_id = $2", uuid, project_id)
    return None if row is None else ServerGroup.from_row(row)


async def exists_in_project(db: Executor, uuid: str, project_id: str) -> bool:
    found = await db.fetchval("SELECT 1 FROM instance_groups WHERE uuid = $1 AND project_id = $2",
                              uuid, project_id)
    return found is not None


async def list_all(db: Executor) -> list[ServerGroup]:
    return [ServerGroup.from_row(r) for r in await db.fetch(f"{_SELECT} ORDER BY g.id")]


async def list_for_project(db: Executor, project_id: str) -> list[ServerGroup]:
    rows = await db.fetch(f"{_SELECT} WHERE g.project_id = $1 ORDER BY g.id", project_id)
    return [ServerGroup.from_row(r) for r in rows]


async def delete(db: Executor, group_id: int) -> None:
    """Delete for real (as Nova does); the policy and member rows go with it (ON DELETE CASCADE)."""
    await db.execute("DELETE FROM instance_groups WHERE id = $1", group_id)


async def count_in_project(db: Executor, project_id: str, user_id: str | None = None) -> int:
    """The project's server groups (those one user made in it)."""
    if user_id is None:
        count = await db.fetchval("SELECT COUNT(*) FROM instance_groups WHERE project_id = $1",
                                  project_id)
    else:
        count = await db.fetchval("SELECT COUNT(*) FROM instance_groups WHERE project_id = $1"
                                  " AND user_id = $2", project_id, user_id)
    return int(count or 0)


# ----- members ----------------------------------------------------------------------------------
async def add_members(tx: Executor, group_id: int, instance_uuids: Iterable[str], now: float) -> None:
    """Join new instances to the group, in the transaction that inserts them."""
    for uuid in instance_uuids:
        await tx.execute("INSERT INTO instance_group_members (group_id, instance_uuid, created_at)"
                         " VALUES ($1, $2, $3)", group_id, uuid, now)


async def live_members(db: Executor, group_id: int) -> list[str]:
    """The uuids of a group's members whose instance still exists, in joining order."""
    rows = await db.fetch(
        "SELECT m.instance_uuid FROM instance_group_members m JOIN instances i"
        " ON i.uuid = m.instance_uuid AND i.deleted = 0 WHERE m.group_id = $1 ORDER BY m.id",
        group_id)
    return [r["instance_uuid"] for r in rows]


async def count_live_members(db: Executor, group_id: int) -> int:
    """Members of a group whose instance still exists."""
    count = await db.fetchval(
        "SELECT COUNT(*) FROM instance_group_members m JOIN instances i"
        " ON i.uuid = m.instance_uuid AND i.deleted = 0 WHERE m.group_id = $1", group_id)
    return int(count or 0)


async def live_members_and_hosts(tx: Executor, group_id: int) -> list[GroupMember]:
    """uuid and host of the live instances of a group (the scheduler's affinity filters)."""
    rows = await tx.fetch(
        "SELECT i.uuid, i.host FROM instance_group_members m JOIN instances i"
        " ON i.uuid = m.instance_uuid AND i.deleted = 0 WHERE m.group_id = $1", group_id)
    return [GroupMember(uuid=str(r["uuid"]), host=r["host"]) for r in rows]
