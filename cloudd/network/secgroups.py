"""Security groups: per-project groups of ingress rules; every instance is in at least one.

Nova's model: a ``default`` group per project, made on first use, that allows traffic only from
members of the same group; a rule opens a protocol/port range to a CIDR or to another group.
"""

from __future__ import annotations

import time
import uuid as uuidlib
from typing import Any

from cloudd.db import Database, DuplicateError, Executor
from cloudd.network.ipam import NetworkError
from cloudd.network.rules import SecurityGroupRule

DEFAULT_GROUP = "default"


class SecurityGroupNotFound(NetworkError):
    pass


class SecurityGroupExists(NetworkError):
    pass


async def ensure_default(db: Executor, project_id: str) -> dict[str, Any]:
    """The project's ``default`` group: members reach each other, nothing else gets in."""
    row = await db.fetchrow("SELECT * FROM security_groups WHERE project_id = $1 AND name = $2",
                            project_id, DEFAULT_GROUP)
    if row is not None:
        return row
    try:
        group = await create_group(db, project_id, DEFAULT_GROUP, "Default security group")
    except SecurityGroupExists:  # created by a concurrent request
        found = await db.fetchrow("SELECT * FROM security_groups WHERE project_id = $1 AND name = $2",
                                  project_id, DEFAULT_GROUP)
        assert found is not None
        return found
    await add_rule(db, group, SecurityGroupRule(group_id=group["id"]))
    return group


async def create_group(db: Executor, project_id: str, name: str, description: str = "",
                       user_id: str | None = None) -> dict[str, Any]:
    try:
        row = await db.fetchrow(
            "INSERT INTO security_groups (uuid, name, description, project_id, user_id, created_at)"
            " VALUES ($1, $2, $3, $4, $5, $6) RETURNING *",
            str(uuidlib.uuid4()), name, description, project_id, user_id, time.time())
    except DuplicateError:
        raise SecurityGroupExists(f"Security group {name} already exists") from None
    assert row is not None
    return row


async def list_groups(db: Executor, project_id: str | None) -> list[dict[str, Any]]:
    if project_id is None:
        return await db.fetch("SELECT * FROM security_groups ORDER BY id")
    await ensure_default(db, project_id)
    return await db.fetch("SELECT * FROM security_groups WHERE project_id = $1 ORDER BY id", project_id)


async def get_group(db: Executor, key: str | int, project_id: str | None) -> dict[str, Any]:
    """By uuid, numeric id or name (within the project)."""
    if isinstance(key, int) or str(key).isdigit():
        row = await db.fetchrow("SELECT * FROM security_groups WHERE id = $1", int(key))
    else:
        row = await db.fetchrow(
            "SELECT * FROM security_groups WHERE uuid = $1 OR (name = $1 AND project_id = $2)",
            key, project_id or "")
    if row is None or (project_id is not None and row["project_id"] != project_id):
        raise SecurityGroupNotFound(f"Security group {key} not found")
    return row


async def delete_group(db: Executor, group: dict[str, Any]) -> None:
    if group["name"] == DEFAULT_GROUP:
        raise NetworkError("the default security group cannot be deleted")
    if await db.fetchval("SELECT count(*) FROM security_group_instance_association"
                         " WHERE security_group_id = $1", group["id"]):
        raise NetworkError(f"security group {group['name']} is in use")
    await db.execute("DELETE FROM security_group_rules WHERE parent_group_id = $1", group["id"])
    await db.execute("DELETE FROM security_groups WHERE id = $1", group["id"])


async def rules_of(db: Executor, group_ids: list[int]) -> list[dict[str, Any]]:
    if not group_ids:
        return []
    marks = ", ".join(f"${i}" for i in range(1, len(group_ids) + 1))
    return await db.fetch(
        "SELECT r.*, g.uuid AS parent_uuid, g.project_id, s.uuid AS group_uuid"
        " FROM security_group_rules r JOIN security_groups g ON g.id = r.parent_group_id"
        " LEFT JOIN security_groups s ON s.id = r.group_id"
        f" WHERE r.parent_group_id IN ({marks}) ORDER BY r.id", *group_ids)


async def add_rule(db: Executor, group: dict[str, Any], rule: SecurityGroupRule) -> dict[str, Any]:
    """Store a rule already parsed by ``cloudd.network.rules`` (the one place rules are checked)."""
    row = await db.fetchrow(
        "INSERT INTO security_group_rules (uuid, parent_group_id, protocol, from_port, to_port, cidr,"
        " group_id, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
        str(uuidlib.uuid4()), group["id"], rule.protocol, rule.from_port, rule.to_port, rule.cidr,
        rule.group_id, time.time())
    assert row is not None
    return (await rules_of(db, [group["id"]]))[-1]


async def get_rule(db: Executor, key: str, project_id: str | None) -> dict[str, Any]:
    row = await db.fetchrow(
        "SELECT r.*, g.uuid AS parent_uuid, g.project_id, s.uuid AS group_uuid"
        " FROM security_group_rules r JOIN security_groups g ON g.id = r.parent_group_id"
        " LEFT JOIN security_groups s ON s.id = r.group_id WHERE r.uuid = $1 OR CAST(r.id AS TEXT) = $1",
        key)
    if row is None or (project_id is not None and row["project_id"] != project_id):
        raise SecurityGroupNotFound(f"Security group rule {key} not found")
    return row


async def delete_rule(db: Executor, rule: dict[str, Any]) -> None:
    await db.execute("DELETE FROM security_group_rules WHERE id = $1", rule["id"])


async def add_instance(db: Executor, group: dict[str, Any], instance_uuid: str) -> None:
    await db.execute(
        "DELETE FROM security_group_instance_association WHERE security_group_id = $1"
        " AND instance_uuid = $2", group["id"], instance_uuid)
    await db.execute(
        "INSERT INTO security_group_instance_association (security_group_id, instance_uuid)"
        " VALUES ($1, $2)", group["id"], instance_uuid)


async def remove_instance(db: Executor, group: dict[str, Any], instance_uuid: str) -> None:
    await db.execute(
        "DELETE FROM security_group_instance_association WHERE security_group_id = $1"
        " AND instance_uuid = $2", group["id"], instance_uuid)


async def groups_of_instance(db: Executor, instance_uuid: str) -> list[dict[str, Any]]:
    return await db.fetch(
        "SELECT g.* FROM security_groups g JOIN security_group_instance_association a"
        " ON a.security_group_id = g.id WHERE a.instance_uuid = $1 ORDER BY g.id", instance_uuid)


async def assign_at_build(db: Database, instance: dict[str, Any], names: list[str]) -> None:
    """Put a new instance in the groups it asked for (``default`` when none)."""
    project_id = instance["project_id"]
    await ensure_default(db, project_id)
    for name in names or [DEFAULT_GROUP]:
        await add_instance(db, await get_group(db, name, project_id), instance["uuid"])
