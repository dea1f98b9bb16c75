"""``roles`` and ``role_assignments``: the roles, and which user has which on which project."""

from __future__ import annotations

from cloudd.db import Executor, Row
from cloudd.identity.records import Role, RoleAssignment


def _role(row: Row) -> Role:
    return Role(id=str(row["id"]), name=str(row["name"]))


async def get(db: Executor, role_id: str) -> Role | None:
    row = await db.fetchrow("SELECT * FROM roles WHERE id = $1", role_id)
    return _role(row) if row else None


async def by_name(db: Executor, name: str) -> Role | None:
    row = await db.fetchrow("SELECT * FROM roles WHERE name = $1", name)
    return _role(row) if row else None


async def list_by_name(db: Executor, name: str | None = None) -> list[Role]:
    """Every role (or those named `name`), by name."""
    if name is None:
        rows = await db.fetch("SELECT * FROM roles ORDER BY name")
    else:
        rows = await db.fetch("SELECT * FROM roles WHERE name = $1 ORDER BY name", name)
    return [_role(row) for row in rows]


async def list_all(db: Executor) -> list[Role]:
    """Every role, in no particular order."""
    return [_role(row) for row in await db.fetch("SELECT id, name FROM roles")]


async def insert(db: Executor, role_id: str, name: str) -> None:
    await db.execute("INSERT INTO roles (id, name) VALUES ($1, $2)", role_id, name)


# ----- assignments ---------------------------------------------------------------------------
async def assign(db: Executor, user_id: str, project_id: str, role_id: str) -> None:
    """Give the user the role on the project; nothing when it has it already."""
    await db.execute(
        "INSERT INTO role_assignments (user_id, project_id, role_id) VALUES ($1, $2, $3)"
        " ON CONFLICT DO NOTHING", user_id, project_id, role_id)


async def unassign(db: Executor, user_id: str, project_id: str, role_id: str) -> bool:
    """False when the user did not have that role on the project."""
    return bool(await db.execute(
        "DELETE FROM role_assignments WHERE user_id = $1 AND project_id = $2 AND role_id = $3",
        user_id, project_id, role_id))


async def is_assigned(db: Executor, user_id: str, project_id: str,
                      role_id: str | None = None) -> bool:
    """Whether the user has that role (any role, when None) on the project."""
    if role_id is None:
        found = await db.fetchval(
            "SELECT count(*) FROM role_assignments WHERE user_id = $1 AND project_id = $2",
            user_id, project_id)
    else:
        found = await db.fetchval(
            "SELECT count(*) FROM role_assignments WHERE user_id = $1 AND project_id = $2"
            " AND role_id = $3", user_id, project_id, role_id)
    return bool(found)


async def assigned_names(db: Executor, user_id: str, project_id: str) -> set[str]:
    """The names of the roles assigned to the user on the project (implied ones not added)."""
    rows = await db.fetch(
        "SELECT r.name FROM role_assignments a JOIN roles r ON r.id = a.role_id"
        " WHERE a.user_id = $1 AND a.project_id = $2", user_id, project_id)
    return {str(row["name"]) for row in rows}


async def of_user_on_project(db: Executor, user_id: str, project_id: str) -> list[Role]:
    """The roles assigned to the user on the project (implied ones not added), by name."""
    rows = await db.fetch(
        "SELECT r.* FROM roles r JOIN role_assignments a ON a.role_id = r.id"
        " WHERE a.user_id = $1 AND a.project_id = $2 ORDER BY r.name", user_id, project_id)
    return [_role(row) for row in rows]


async def assignments(db: Executor, user_id: str | None, project_id: str | None,
                      role_id: str | None) -> list[RoleAssignment]:
    """The assignments matching the filters given (None: any), by project, user, role name."""
    filters = {"a.user_id": user_id, "a.project_id": project_id, "a.role_id": role_id}
    terms, args = [], []
    for column, value in filters.items():
        if value is not None:
            args.append(value)
            terms.append(f"{column} = ${len(args)}")
    where = (" WHERE " + " AND ".join(terms)) if terms else ""
    rows = await db.fetch(
        "SELECT a.*, r.name AS role_name, u.name AS user_name, p.name AS project_name"
        " FROM role_assignments a JOIN roles r ON r.id = a.role_id"
        " JOIN users u ON u.id = a.user_id JOIN projects p ON p.id = a.project_id"
        + where + " ORDER BY p.name, u.name, r.name", *args)
    return [RoleAssignment(user_id=str(r["user_id"]), project_id=str(r["project_id"]),
                           role_id=str(r["role_id"]), user_name=str(r["user_name"]),
                           project_name=str(r["project_name"]), role_name=str(r["role_name"]))
            for r in rows]
