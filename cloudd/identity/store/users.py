"""``users``: accounts, their scrypt password hashes and default projects."""

from __future__ import annotations

from collections.abc import Mapping

from cloudd.db import Executor, Row
from cloudd.identity.records import User

# The columns `update` may set; the rules choose among them, never the client.
COLUMNS = ("name", "enabled", "default_project_id", "email", "password_hash")


def _user(row: Row) -> User:
    return User(id=str(row["id"]), name=str(row["name"]), domain_id=str(row["domain_id"]),
                password_hash=str(row["password_hash"]),
                default_project_id=row["default_project_id"], email=row["email"],
                enabled=bool(row["enabled"]), created_at=float(row["created_at"]))


async def get(db: Executor, user_id: str) -> User | None:
    row = await db.fetchrow("SELECT * FROM users WHERE id = $1", user_id)
    return _user(row) if row else None


async def by_name(db: Executor, name: str | None, domain_id: str | None = None) -> User | None:
    """The user of that name (in that domain, when given)."""
    if domain_id is None:
        row = await db.fetchrow("SELECT * FROM users WHERE name = $1", name)
    else:
        row = await db.fetchrow("SELECT * FROM users WHERE name = $1 AND domain_id = $2",
                                name, domain_id)
    return _user(row) if row else None


async def list_by_name(db: Executor, name: str | None = None) -> list[User]:
    """Every user (or those named `name`), by name."""
    if name is None:
        rows = await db.fetch("SELECT * FROM users ORDER BY name")
    else:
        rows = await db.fetch("SELECT * FROM users WHERE name = $1 ORDER BY name", name)
    return [_user(row) for row in rows]


async def insert(db: Executor, user_id: str, name: str, password_hash: str,
                 default_project_id: str | None, created_at: float, *,
                 email: str | None = None, enabled: bool = True) -> None:
    """Raises cloudd.db.DuplicateError when the name is taken."""
    await db.execute(
        "INSERT INTO users (id, name, password_hash, default_project_id, email, enabled,"
        " created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        user_id, name, password_hash, default_project_id, email, int(enabled), created_at)


async def update(db: Executor, user_id: str, changes: Mapping[str, object]) -> None:
    """Set `changes` (column -> value, columns from COLUMNS, `enabled` a bool). Raises
    cloudd.db.DuplicateError when a new name is taken."""
    unknown = set(changes) - set(COLUMNS)
    if unknown:
        raise ValueError(f"not a column update may set: {sorted(unknown)}")
    if not changes:
        return
    values = [int(bool(v)) if column == "enabled" else v for column, v in changes.items()]
    # Column names come from COLUMNS (checked above), never from the client.
    assignments = ", ".join(f"{column} = ${i}" for i, column in enumerate(changes, 1))
    await db.execute(f"UPDATE users SET {assignments} WHERE id = ${len(changes) + 1}",
                     *values, user_id)


async def set_password_hash(db: Executor, user_id: str, password_hash: str) -> None:
    await db.execute("UPDATE users SET password_hash = $1 WHERE id = $2", password_hash, user_id)


async def delete(db: Executor, user_id: str) -> bool:
    """False when there was no such user (its assignments, tokens, credentials cascade)."""
    return bool(await db.execute("DELETE FROM users WHERE id = $1", user_id))
