"""The security group family's repository (issue 17, item 2): every statement on
``security_groups``, ``security_group_rules`` and ``security_group_instance_association``,
returning typed records. The rules (the ``default`` group, what may be deleted, a rule's
values) stay in ``cloudd.network.secgroups`` and ``cloudd.vocab.secgroup_rules``.
"""

from __future__ import annotations

import time
import uuid as uuidlib
from dataclasses import dataclass
from typing import Any

from cloudd.db import Executor
from cloudd.vocab.secgroup_rules import SecurityGroupRule

# ----- records ------------------------------------------------------------------------------


@dataclass(frozen=True)
class SecurityGroup:
    id: int
    uuid: str
    name: str
    description: str
    project_id: str
    user_id: str | None
    created_at: float


@dataclass(frozen=True)
class StoredRule:
    """A ``security_group_rules`` row (Nova's SecurityGroupRule; the request model of that name
    is ``cloudd.vocab.secgroup_rules.SecurityGroupRule``) with its group's uuid, name and project and
    its source group's uuid. The values are as stored: rows written before the rules were
    checked may hold any value of the column's type (an unknown protocol, a port out of range,
    text that is no CIDR), so whatever applies one re-parses it (``rules.stored_rule``)."""
    id: int
    uuid: str
    parent_group_id: int
    protocol: str | None
    from_port: int | None
    to_port: int | None
    cidr: str | None
    group_id: int | None  # the source group
    created_at: float
    parent_uuid: str
    parent_name: str
    project_id: str
    group_uuid: str | None  # the source group's


def _group(row: dict[str, Any]) -> SecurityGroup:
    return SecurityGroup(id=int(row["id"]), uuid=row["uuid"], name=row["name"],
                         description=row["description"], project_id=row["project_id"],
                         user_id=row["user_id"], created_at=float(row["created_at"]))


def _rule(row: dict[str, Any]) -> StoredRule:
    return StoredRule(
        id=int(row["id"]), uuid=row["uuid"], parent_group_id=int(row["parent_group_id"]),
        protocol=row["protocol"], from_port=row["from_port"], to_port=row["to_port"],
        cidr=row["cidr"], group_id=None if row["group_id"] is None else int(row["group_id"]),
        created_at=float(row["created_at"]), parent_uuid=row["parent_uuid"],
        parent_name=row["parent_name"], project_id=row["project_id"],
        group_uuid=row["group_uuid"])


def _marks(count: int) -> str:
    return ", ".join(f"${n}" for n in range(1, count + 1))


# ----- groups -------------------------------------------------------------------------------

async def by_name(db: Executor, project_id: str, name: str) -> SecurityGroup | None:
    row = await db.fetchrow("SELECT * FROM security_groups WHERE project_id = $1 AND name = $2",
                            project_id, name)
    return None if row is None else _group(row)


async def by_id(db: Executor, group_id: int) -> SecurityGroup | None:
    row = await db.fetchrow("SELECT * FROM security_groups WHERE id = $1", group_id)
    return None if row is None else _group(row)


async def by_ids(db: Executor, group_ids: list[int]) -> list[SecurityGroup]:
    if not group_ids:
        return []
    return [_group(r) for r in await db.fetch(
        f"SELECT * FROM security_groups WHERE id IN ({_marks(len(group_ids))}) ORDER BY id",
        *group_ids)]


async def by_uuid(db: Executor, group_uuid: str) -> SecurityGroup | None:
    row = await db.fetchrow("SELECT * FROM security_groups WHERE uuid = $1", group_uuid)
    return None if row is None else _group(row)


async def by_uuid_or_name(db: Executor, key: str, project_id: str) -> SecurityGroup | None:
    """By uuid, or by name within the project."""
    row = await db.fetchrow(
        "SELECT * FROM security_groups WHERE uuid = $1 OR (name = $1 AND project_id = $2)",
        key, project_id)
    return None if row is None else _group(row)


async def insert_group(db: Executor, project_id: str, name: str, description: str,
                       user_id: str | None) -> SecurityGroup:
    """A new group (``DuplicateError``: the project has one of that name)."""
    row = await db.fetchrow(
        "INSERT INTO security_groups (uuid, name, description, project_id, user_id, created_at)"
        " VALUES ($1, $2, $3, $4, $5, $6) RETURNING *",
        str(uuidlib.uuid4()), name, description, project_id, user_id, time.time())
    assert row is not None
    return _group(row)


async def all_groups(db: Executor) -> list[SecurityGroup]:
    return [_group(r) for r in await db.fetch("SELECT * FROM security_groups ORDER BY id")]


async def project_groups(db: Executor, project_id: str) -> list[SecurityGroup]:
    return [_group(r) for r in await db.fetch(
        "SELECT * FROM security_groups WHERE project_id = $1 ORDER BY id", project_id)]


async def has_members(db: Executor, group_id: int) -> bool:
    return bool(await db.fetchval("SELECT count(*) FROM security_group_instance_association"
                                  " WHERE security_group_id = $1", group_id))


async def delete_group(db: Executor, group_id: int) -> None:
    """The group and its rules."""
    await db.execute("DELETE FROM security_group_rules WHERE parent_group_id = $1", group_id)
    await db.execute("DELETE FROM security_groups WHERE id = $1", group_id)


# ----- rules --------------------------------------------------------------------------------

_RULES = (
    "SELECT r.*, g.uuid AS parent_uuid, g.name AS parent_name, g.project_id,"
    " s.uuid AS group_uuid FROM security_group_rules r"
    " JOIN security_groups g ON g.id = r.parent_group_id"
    " LEFT JOIN security_groups s ON s.id = r.group_id")


async def rules_of(db: Executor, group_ids: list[int]) -> list[StoredRule]:
    """The rules of these groups, in creation order."""
    if not group_ids:
        return []
    return [_rule(r) for r in await db.fetch(
        f"{_RULES} WHERE r.parent_group_id IN ({_marks(len(group_ids))}) ORDER BY r.id",
        *group_ids)]


async def all_rules(db: Executor) -> list[StoredRule]:
    return [_rule(r) for r in await db.fetch(f"{_RULES} ORDER BY r.id")]


async def rule_by_key(db: Executor, key: str) -> StoredRule | None:
    """By uuid or numeric id (as text)."""
    row = await db.fetchrow(f"{_RULES} WHERE r.uuid = $1 OR CAST(r.id AS TEXT) = $1", key)
    return None if row is None else _rule(row)


async def insert_rule(db: Executor, group_id: int, rule: SecurityGroupRule) -> StoredRule:
    row = await db.fetchrow(
        "INSERT INTO security_group_rules (uuid, parent_group_id, protocol, from_port, to_port,"
        " cidr, group_id, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING uuid",
        str(uuidlib.uuid4()), group_id, rule.protocol, rule.from_port, rule.to_port, rule.cidr,
        rule.group_id, time.time())
    assert row is not None
    stored = await rule_by_key(db, row["uuid"])
    assert stored is not None
    return stored


async def delete_rule(db: Executor, rule_id: int) -> None:
    await db.execute("DELETE FROM security_group_rules WHERE id = $1", rule_id)


# ----- members ------------------------------------------------------------------------------

async def add_member(db: Executor, group_id: int, instance_uuid: str) -> None:
    """The server in the group (again: a second add is one membership)."""
    await remove_member(db, group_id, instance_uuid)
    await db.execute(
        "INSERT INTO security_group_instance_association (security_group_id, instance_uuid)"
        " VALUES ($1, $2)", group_id, instance_uuid)


async def remove_member(db: Executor, group_id: int, instance_uuid: str) -> None:
    await db.execute(
        "DELETE FROM security_group_instance_association WHERE security_group_id = $1"
        " AND instance_uuid = $2", group_id, instance_uuid)


async def forget_instance(db: Executor, instance_uuid: str) -> None:
    """A deleted server leaves all its groups."""
    await db.execute("DELETE FROM security_group_instance_association WHERE instance_uuid = $1",
                     instance_uuid)


async def groups_of_instance(db: Executor, instance_uuid: str) -> list[SecurityGroup]:
    return [_group(r) for r in await db.fetch(
        "SELECT g.* FROM security_groups g JOIN security_group_instance_association a"
        " ON a.security_group_id = g.id WHERE a.instance_uuid = $1 ORDER BY g.id",
        instance_uuid)]


async def groups_of_instances(db: Executor, instance_uuids: list[str]
                              ) -> dict[str, list[SecurityGroup]]:
    """uuid -> the groups of each server (by group id), in one query."""
    result: dict[str, list[SecurityGroup]] = {uuid: [] for uuid in instance_uuids}
    if not instance_uuids:
        return result
    for row in await db.fetch(
            "SELECT a.instance_uuid, g.* FROM security_group_instance_association a"
            " JOIN security_groups g ON g.id = a.security_group_id"
            f" WHERE a.instance_uuid IN ({_marks(len(instance_uuids))}) ORDER BY g.id",
            *instance_uuids):
        result[row["instance_uuid"]].append(_group(row))
    return result


async def member_addresses(db: Executor, group_id: int) -> list[Any]:
    """The allocated fixed IPs of a group's members (raw: callers check them)."""
    return [r["address"] for r in await db.fetch(
        "SELECT f.address FROM fixed_ips f JOIN security_group_instance_association a"
        " ON a.instance_uuid = f.instance_uuid WHERE a.security_group_id = $1 AND f.allocated = 1"
        " ORDER BY f.id", group_id)]
