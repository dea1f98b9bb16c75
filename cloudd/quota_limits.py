"""The `quotas` table: each project's hard limits set over the defaults, compute and storage
resources alike (`cloudd manage quota set`, PUT /os-quota-sets), `project_user_quotas`, a
user's limits within a project over the project's (PUT /os-quota-sets/{p}?user_id=), and
`quota_classes`, the limits a quota class sets over the built-in defaults (PUT
/os-quota-class-sets; the class "default" is every project's default). Every statement on
them lives here; the rules (defaults, counted usage, the checks) stay with their domains,
`cloudd.compute.quota` and `cloudd.storage_quota`, which both read these overrides. A leaf
module (nothing of cloudd but the database) so that both can import it."""

from __future__ import annotations

from collections.abc import Mapping

from cloudd.db import Executor


async def overrides(db: Executor, project_id: str) -> dict[str, int]:
    """resource -> hard limit (-1: unlimited) for the resources the project has a row for."""
    rows = await db.fetch("SELECT resource, hard_limit FROM quotas WHERE project_id = $1", project_id)
    return {str(row["resource"]): int(row["hard_limit"]) for row in rows}


async def set_overrides(db: Executor, project_id: str, values: Mapping[str, int], now: float) -> None:
    """Replace the project's rows for these resources (call in a transaction to change them
    together)."""
    for resource, limit in values.items():
        await db.execute("DELETE FROM quotas WHERE project_id = $1 AND resource = $2",
                         project_id, resource)
        await db.execute("INSERT INTO quotas (project_id, resource, hard_limit, updated_at)"
                         " VALUES ($1, $2, $3, $4)", project_id, resource, limit, now)


async def reset(db: Executor, project_id: str) -> None:
    """Back to the defaults: forget every override of the project."""
    await db.execute("DELETE FROM quotas WHERE project_id = $1", project_id)


async def user_overrides(db: Executor, project_id: str, user_id: str) -> dict[str, int]:
    """resource -> hard limit of the user in the project, for the resources it has a row for."""
    rows = await db.fetch("SELECT resource, hard_limit FROM project_user_quotas"
                          " WHERE project_id = $1 AND user_id = $2", project_id, user_id)
    return {str(row["resource"]): int(row["hard_limit"]) for row in rows}


async def set_user_overrides(db: Executor, project_id: str, user_id: str,
                             values: Mapping[str, int], now: float) -> None:
    """Replace the user's rows for these resources (in a transaction to change them together)."""
    for resource, limit in values.items():
        await db.execute("DELETE FROM project_user_quotas WHERE project_id = $1 AND user_id = $2"
                         " AND resource = $3", project_id, user_id, resource)
        await db.execute("INSERT INTO project_user_quotas (project_id, user_id, resource,"
                         " hard_limit, updated_at) VALUES ($1, $2, $3, $4, $5)",
                         project_id, user_id, resource, limit, now)


async def reset_user(db: Executor, project_id: str, user_id: str) -> None:
    """The user's limits are the project's again."""
    await db.execute("DELETE FROM project_user_quotas WHERE project_id = $1 AND user_id = $2",
                     project_id, user_id)


async def class_limits(db: Executor, class_name: str) -> dict[str, int]:
    """resource -> hard limit (-1: unlimited) the quota class sets."""
    rows = await db.fetch("SELECT resource, hard_limit FROM quota_classes WHERE class_name = $1",
                          class_name)
    return {str(row["resource"]): int(row["hard_limit"]) for row in rows}


async def set_class_limits(db: Executor, class_name: str, values: Mapping[str, int],
                           now: float) -> None:
    """Replace the class's rows for these resources (in a transaction to change them together)."""
    for resource, limit in values.items():
        await db.execute("DELETE FROM quota_classes WHERE class_name = $1 AND resource = $2",
                         class_name, resource)
        await db.execute("INSERT INTO quota_classes (class_name, resource, hard_limit, updated_at)"
                         " VALUES ($1, $2, $3, $4)", class_name, resource, limit, now)
