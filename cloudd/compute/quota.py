"""Per-project and per-user quotas (Nova's DbQuotaDriver with counted usage): limits, usage,
atomic checks. A user's limits within a project are the project's, overridden by the user's
own rows (PUT /os-quota-sets/{project}?user_id=); a check counts the user's usage against them
as well as the project's usage against the project's.

Usage is counted from the rows themselves (instances, key pairs, server groups), as Nova does
since Pike, so nothing can drift. A check is atomic when it runs inside the transaction that
inserts the new rows, after `lock_project`: on SQLite the transaction (BEGIN IMMEDIATE under the
connection's lock) already excludes every other writer; on PostgreSQL a transaction-scoped
advisory lock on the project serialises the creates of one project, so twenty concurrent
creates against a quota of ten yield exactly ten.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cloudd import errors, quota_limits
from cloudd.compute import instances, keypairs, server_groups
from cloudd.db import Executor

# Nova's defaults (nova/quota.py, plus the server group quotas later releases added); -1 = unlimited.
DEFAULT_QUOTAS: dict[str, int] = {
    "instances": 10, "cores": 20, "ram": 51200, "floating_ips": 10, "fixed_ips": -1,
    "metadata_items": 128, "key_pairs": 100, "security_groups": 10, "security_group_rules": 20,
    "injected_files": 5, "injected_file_content_bytes": 10240, "injected_file_path_bytes": 255,
    "server_groups": 10, "server_group_members": 10,
}
UNLIMITED = -1


class QuotaExceeded(errors.QuotaExceeded):
    """Nova's OverQuota/TooManyInstances: the API answers 403 forbidden with this message."""

    def __init__(self, requested: Mapping[str, int], used: Mapping[str, int],
                 limits: Mapping[str, int], message: str | None = None) -> None:
        overs = sorted(requested)
        self.overs = overs
        self.message = message or (
            f"Quota exceeded for {', '.join(overs)}: Requested "
            f"{', '.join(str(requested[r]) for r in overs)}, but already used "
            f"{', '.join(str(used[r]) for r in overs)} of "
            f"{', '.join(str(limits[r]) for r in overs)} {', '.join(overs)}")
        super().__init__(self.message)


async def lock_project(tx: Executor, project_id: str) -> None:
    """Serialise quota-checked inserts of one project until `tx` ends (see the module doc)."""
    if tx.dialect == "postgresql":
        await tx.execute("SELECT pg_advisory_xact_lock(hashtext($1))", f"quota:{project_id}")


DEFAULT_CLASS = "default"


async def class_limits(db: Executor, class_name: str) -> dict[str, int]:
    """What a quota class sets: the built-in defaults, overridden by the class's rows."""
    out = dict(DEFAULT_QUOTAS)
    for resource, limit in (await quota_limits.class_limits(db, class_name)).items():
        if resource in out:
            out[resource] = limit
    return out


async def set_class_limits(db: Executor, class_name: str, values: Mapping[str, int],
                           now: float) -> None:
    await quota_limits.set_class_limits(db, class_name, values, now)


async def defaults(db: Executor) -> dict[str, int]:
    """Every project's defaults: the built-in ones as the default quota class sets them."""
    return await class_limits(db, DEFAULT_CLASS)


async def limits(db: Executor, project_id: str) -> dict[str, int]:
    """The project's hard limits: the defaults (of the default quota class), overridden by its
    rows in `quotas`."""
    out = await defaults(db)
    for resource, limit in (await quota_limits.overrides(db, project_id)).items():
        if resource in out:
            out[resource] = limit
    return out


async def user_limits(db: Executor, project_id: str, user_id: str) -> dict[str, int]:
    """The user's hard limits in the project: the project's, overridden by the user's rows."""
    out = await limits(db, project_id)
    for resource, limit in (await quota_limits.user_overrides(db, project_id, user_id)).items():
        if resource in out:
            out[resource] = limit
    return out


async def set_user_limits(db: Executor, project_id: str, user_id: str,
                          values: Mapping[str, int], now: float) -> None:
    await quota_limits.set_user_overrides(db, project_id, user_id, values, now)


async def reset_user_limits(db: Executor, project_id: str, user_id: str) -> None:
    await quota_limits.reset_user(db, project_id, user_id)


async def user_usage(db: Executor, project_id: str, user_id: str) -> dict[str, int]:
    """Counted usage of one user in the project (their instances, groups and key pairs)."""
    held = await instances.project_usage(db, project_id, user_id)
    groups = await server_groups.count_in_project(db, project_id, user_id)
    key_pairs = await keypairs.count_for_user(db, user_id)
    return {"instances": held.instances, "cores": held.cores, "ram": held.ram,
            "server_groups": groups, "key_pairs": key_pairs}


async def set_limits(db: Executor, project_id: str, values: Mapping[str, int], now: float) -> None:
    await quota_limits.set_overrides(db, project_id, values, now)


async def reset_limits(db: Executor, project_id: str) -> None:
    await quota_limits.reset(db, project_id)


async def usage(db: Executor, project_id: str, user_id: str | None = None) -> dict[str, int]:
    """Counted usage of the project; key pairs belong to users, so they count for `user_id`."""
    held = await instances.project_usage(db, project_id)
    groups = await server_groups.count_in_project(db, project_id)
    key_pairs = 0 if user_id is None else await keypairs.count_for_user(db, user_id)
    return {"instances": held.instances, "cores": held.cores, "ram": held.ram,
            "server_groups": groups, "key_pairs": key_pairs}


def _over(wanted: Mapping[str, int], used: Mapping[str, int], hard: Mapping[str, int]) -> list[str]:
    return [r for r, amount in wanted.items()
            if amount > 0 and hard[r] != UNLIMITED and used.get(r, 0) + amount > hard[r]]


async def check(tx: Executor, project_id: str, wanted: Mapping[str, int],
                user_id: str | None = None) -> None:
    """Raise QuotaExceeded unless `wanted` more of each resource fits the project's limits
    and (with `user_id`) the user's; call after lock_project."""
    for hard, used in await _scopes(tx, project_id, user_id):
        if overs := _over(wanted, used, hard):
            raise QuotaExceeded({r: wanted[r] for r in overs}, used, hard)


async def _scopes(tx: Executor, project_id: str,
                  user_id: str | None) -> list[tuple[dict[str, int], dict[str, int]]]:
    """(limits, usage) of the project and, with `user_id`, of the user in it."""
    scopes = [(await limits(tx, project_id), await usage(tx, project_id, user_id))]
    if user_id is not None:
        scopes.append((await user_limits(tx, project_id, user_id),
                       await user_usage(tx, project_id, user_id)))
    return scopes


def instance_resources(flavor: Mapping[str, Any], count: int) -> dict[str, int]:
    return {"instances": count, "cores": int(flavor["vcpus"]) * count,
            "ram": int(flavor["memory_mb"]) * count}


async def allowed_instances(tx: Executor, project_id: str, flavor: Mapping[str, Any],
                            min_count: int, max_count: int, user_id: str | None = None) -> int:
    """How many of max_count instances fit the project's and the user's limits (Nova lowers
    max_count to what the quota allows); QuotaExceeded naming min_count when not even
    min_count fit."""
    allowed = max_count
    for hard, used in await _scopes(tx, project_id, user_id):
        for resource, per_instance in instance_resources(flavor, 1).items():
            if hard[resource] != UNLIMITED and per_instance > 0:
                allowed = min(allowed, max(hard[resource] - used[resource], 0) // per_instance)
        if allowed < min_count:
            wanted = instance_resources(flavor, min_count)
            overs = _over(wanted, used, hard)
            raise QuotaExceeded({r: wanted[r] for r in overs}, used, hard)
    return allowed


async def group_members(tx: Executor, group_id: int) -> int:
    """Members of a group whose instance still exists."""
    return await server_groups.count_live_members(tx, group_id)


async def check_group_members(tx: Executor, project_id: str, group_id: int, adding: int) -> None:
    hard = (await limits(tx, project_id))["server_group_members"]
    used = await group_members(tx, group_id)
    if hard != UNLIMITED and used + adding > hard:
        raise QuotaExceeded({"server_group_members": adding}, {"server_group_members": used},
                            {"server_group_members": hard},
                            "Quota exceeded, too many servers in group")
