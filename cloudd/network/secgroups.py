"""Security groups: per-project groups of ingress rules; every instance is in at least one.

Nova's model: a ``default`` group per project, made on first use, that allows traffic only from
members of the same group; a rule opens a protocol/port range to a CIDR or to another group.
The statements are the repository's (``cloudd.network.store.secgroups``); the rules are here.
"""

from __future__ import annotations

from cloudd import errors
from cloudd.db import Database, DuplicateError, Executor
from cloudd.network.ipam import NetworkError
from cloudd.network.store import secgroups as store
from cloudd.network.store.secgroups import SecurityGroup as SecurityGroup
from cloudd.network.store.secgroups import StoredRule as StoredRule
from cloudd.rpc.contracts.instance import Instance
from cloudd.vocab.secgroup_rules import SecurityGroupRule

DEFAULT_GROUP = "default"


class SecurityGroupNotFound(errors.NotFound, NetworkError):
    pass


class SecurityGroupExists(errors.Conflict, NetworkError):
    pass


async def ensure_default(db: Executor, project_id: str) -> SecurityGroup:
    """The project's ``default`` group: members reach each other, nothing else gets in."""
    group = await store.by_name(db, project_id, DEFAULT_GROUP)
    if group is not None:
        return group
    try:
        group = await create_group(db, project_id, DEFAULT_GROUP, "Default security group")
    except SecurityGroupExists:  # created by a concurrent request
        found = await store.by_name(db, project_id, DEFAULT_GROUP)
        assert found is not None
        return found
    await add_rule(db, group, SecurityGroupRule(group_id=group.id))
    return group


async def create_group(db: Executor, project_id: str, name: str, description: str = "",
                       user_id: str | None = None) -> SecurityGroup:
    try:
        return await store.insert_group(db, project_id, name, description, user_id)
    except DuplicateError:
        raise SecurityGroupExists(f"Security group {name} already exists") from None


async def list_groups(db: Executor, project_id: str | None) -> list[SecurityGroup]:
    """Every group (``None``: an admin's view), or the project's, its default one included."""
    if project_id is None:
        return await store.all_groups(db)
    await ensure_default(db, project_id)
    return await store.project_groups(db, project_id)


async def get_group(db: Executor, key: str | int, project_id: str | None) -> SecurityGroup:
    """By uuid, numeric id or name (within the project)."""
    if isinstance(key, int) or str(key).isdigit():
        group = await store.by_id(db, int(key))
    else:
        group = await store.by_uuid_or_name(db, key, project_id or "")
    if group is None or (project_id is not None and group.project_id != project_id):
        raise SecurityGroupNotFound(f"Security group {key} not found")
    return group


async def get_group_by_uuid(db: Executor, group_uuid: str, project_id: str | None
                            ) -> SecurityGroup:
    """By uuid only (the Network API's ids)."""
    group = await store.by_uuid(db, group_uuid)
    if group is None or (project_id is not None and group.project_id != project_id):
        raise SecurityGroupNotFound(f"Security group {group_uuid} not found")
    return group


async def source_groups(db: Executor, rules: list[StoredRule]) -> dict[int, SecurityGroup]:
    """id -> group of the source groups these rules open to, in one query."""
    wanted = sorted({r.group_id for r in rules if r.group_id is not None})
    return {g.id: g for g in await store.by_ids(db, wanted)}


async def delete_group(db: Executor, group: SecurityGroup, allow_default: bool = False) -> None:
    """``allow_default``: Neutron's rule, an admin may delete a project's default group (as
    when tearing a project down); nova-network's and EC2's APIs never do."""
    if group.name == DEFAULT_GROUP and not allow_default:
        raise NetworkError("the default security group cannot be deleted")
    if await store.has_members(db, group.id):
        raise NetworkError(f"security group {group.name} is in use")
    await store.delete_group(db, group.id)


async def rules_of(db: Executor, group_ids: list[int]) -> list[StoredRule]:
    return await store.rules_of(db, group_ids)


async def all_rules(db: Executor) -> list[StoredRule]:
    """Every project's rules (``cloudd manage status``)."""
    return await store.all_rules(db)


async def add_rule(db: Executor, group: SecurityGroup, rule: SecurityGroupRule) -> StoredRule:
    """Store a rule already parsed by ``cloudd.vocab.secgroup_rules`` (the one place rules are checked)."""
    return await store.insert_rule(db, group.id, rule)


async def get_rule(db: Executor, key: str, project_id: str | None) -> StoredRule:
    rule = await store.rule_by_key(db, key)
    if rule is None or (project_id is not None and rule.project_id != project_id):
        raise SecurityGroupNotFound(f"Security group rule {key} not found")
    return rule


async def delete_rule(db: Executor, rule: StoredRule) -> None:
    await store.delete_rule(db, rule.id)


async def add_instance(db: Executor, group: SecurityGroup, instance_uuid: str) -> None:
    await store.add_member(db, group.id, instance_uuid)


async def remove_instance(db: Executor, group: SecurityGroup, instance_uuid: str) -> None:
    await store.remove_member(db, group.id, instance_uuid)


async def groups_of_instance(db: Executor, instance_uuid: str) -> list[SecurityGroup]:
    return await store.groups_of_instance(db, instance_uuid)


async def groups_of_instances(db: Executor, instance_uuids: list[str]
                              ) -> dict[str, list[SecurityGroup]]:
    """uuid -> its groups, for many servers in one query (the APIs' server views)."""
    return await store.groups_of_instances(db, instance_uuids)


async def assign_at_build(db: Database, instance: Instance, names: list[str]) -> None:
    """Put a new instance in the groups it asked for (``default`` when none)."""
    project_id = instance.project_id
    await ensure_default(db, project_id)
    for name in names or [DEFAULT_GROUP]:
        await add_instance(db, await get_group(db, name, project_id), instance.uuid)
