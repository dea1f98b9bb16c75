"""``projects``: Keystone's projects (all in the Default domain, none nested)."""

from __future__ import annotations

from cloudd.db import Executor, Row
from cloudd.identity.records import Project


def _project(row: Row) -> Project:
    return Project(id=str(row["id"]), name=str(row["name"]),
                   description=str(row["description"]), domain_id=str(row["domain_id"]),
                   enabled=bool(row["enabled"]), created_at=float(row["created_at"]))


async def get(db: Executor, project_id: str) -> Project | None:
    row = await db.fetchrow("SELECT * FROM projects WHERE id = $1", project_id)
    return _project(row) if row else None


async def by_name(db: Executor, name: str | None, domain_id: str | None = None) -> Project | None:
    """The project of that name (in that domain, when given)."""
    if domain_id is None:
        row = await db.fetchrow("SELECT * FROM projects WHERE name = $1", name)
    else:
        row = await db.fetchrow("SELECT * FROM projects WHERE name = $1 AND domain_id = $2",
                                name, domain_id)
    return _project(row) if row else None


async def by_id_or_name(db: Executor, id_or_name: str) -> Project | None:
    row = await db.fetchrow("SELECT * FROM projects WHERE id = $1 OR name = $1", id_or_name)
    return _project(row) if row else None


async def list_by_name(db: Executor, name: str | None = None) -> list[Project]:
    """Every project (or those named `name`), by name."""
    if name is None:
        rows = await db.fetch("SELECT * FROM projects ORDER BY name")
    else:
        rows = await db.fetch("SELECT * FROM projects WHERE name = $1 ORDER BY name", name)
    return [_project(row) for row in rows]


async def names_by_id(db: Executor) -> dict[str, str]:
    return {str(r["id"]): str(r["name"]) for r in await db.fetch("SELECT id, name FROM projects")}


async def of_user(db: Executor, user_id: str) -> list[Project]:
    """The projects the user has a role on, by name."""
    rows = await db.fetch(
        "SELECT * FROM projects WHERE id IN"
        " (SELECT project_id FROM role_assignments WHERE user_id = $1) ORDER BY name", user_id)
    return [_project(row) for row in rows]


async def insert(db: Executor, project_id: str, name: str, description: str, enabled: bool,
                 created_at: float) -> None:
    """Raises cloudd.db.DuplicateError when the name is taken."""
    await db.execute(
        "INSERT INTO projects (id, name, description, enabled, created_at)"
        " VALUES ($1, $2, $3, $4, $5)", project_id, name, description, int(enabled), created_at)


async def update(db: Executor, project_id: str, name: str, description: str,
                 enabled: bool) -> None:
    """Raises cloudd.db.DuplicateError when the name is taken."""
    await db.execute(
        "UPDATE projects SET name = $1, description = $2, enabled = $3 WHERE id = $4",
        name, description, int(enabled), project_id)


async def delete(db: Executor, project_id: str) -> bool:
    """False when there was no such project (its assignments, tokens, credentials cascade)."""
    return bool(await db.execute("DELETE FROM projects WHERE id = $1", project_id))
