"""``ec2_credentials``: access/secret pairs, each bound to one user on one project."""

from __future__ import annotations

from cloudd.db import Executor, Row
from cloudd.identity.records import CredentialGrant, Ec2Credential


def _credential(row: Row) -> Ec2Credential:
    return Ec2Credential(access=str(row["access"]), secret=str(row["secret"]),
                         user_id=str(row["user_id"]), project_id=str(row["project_id"]),
                         created_at=float(row["created_at"]))


async def grant(db: Executor, access: str) -> CredentialGrant | None:
    """The credential with its user's and project's names and states, roles not filled in."""
    row = await db.fetchrow(
        "SELECT c.*, u.name AS user_name, p.name AS project_name,"
        " u.enabled AS user_enabled, p.enabled AS project_enabled FROM ec2_credentials c"
        " JOIN users u ON u.id = c.user_id JOIN projects p ON p.id = c.project_id"
        " WHERE c.access = $1", access)
    if row is None:
        return None
    return CredentialGrant(
        access=str(row["access"]), secret=str(row["secret"]), user_id=str(row["user_id"]),
        user_name=str(row["user_name"]), project_id=str(row["project_id"]),
        project_name=str(row["project_name"]),
        enabled=bool(row["user_enabled"]) and bool(row["project_enabled"]))


async def insert(db: Executor, access: str, secret: str, user_id: str, project_id: str,
                 created_at: float) -> Ec2Credential:
    await db.execute(
        "INSERT INTO ec2_credentials (access, secret, user_id, project_id, created_at)"
        " VALUES ($1, $2, $3, $4, $5)", access, secret, user_id, project_id, created_at)
    row = await db.fetchrow("SELECT * FROM ec2_credentials WHERE access = $1", access)
    assert row is not None
    return _credential(row)


async def list_oldest_first(db: Executor, user_id: str | None) -> list[Ec2Credential]:
    """One user's credentials, or everyone's when `user_id` is None."""
    if user_id is None:
        rows = await db.fetch("SELECT * FROM ec2_credentials ORDER BY created_at")
    else:
        rows = await db.fetch(
            "SELECT * FROM ec2_credentials WHERE user_id = $1 ORDER BY created_at", user_id)
    return [_credential(row) for row in rows]


async def of_user(db: Executor, user_id: str, access: str) -> Ec2Credential | None:
    """The credential with that access key if it belongs to that user."""
    row = await db.fetchrow(
        "SELECT * FROM ec2_credentials WHERE access = $1 AND user_id = $2", access, user_id)
    return _credential(row) if row else None


async def delete(db: Executor, access: str) -> None:
    await db.execute("DELETE FROM ec2_credentials WHERE access = $1", access)
