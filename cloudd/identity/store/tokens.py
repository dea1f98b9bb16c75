"""``tokens``: issued tokens, kept only as their sha256, with the roles frozen at issue time."""

from __future__ import annotations

import json

from cloudd.db import Executor
from cloudd.identity.records import Role, TokenData, TokenProject, TokenUser


async def insert(db: Executor, data: TokenData) -> None:
    await db.execute(
        "INSERT INTO tokens (id_hash, user_id, project_id, roles, methods, audit_ids, issued_at,"
        " expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        data.id_hash, data.user.id, data.project.id if data.project else None,
        json.dumps([{"id": role.id, "name": role.name} for role in data.roles]),
        json.dumps(data.methods), json.dumps(data.audit_ids),
        data.issued_at, data.expires_at)


async def load_valid(db: Executor, id_hash: str, now: float) -> TokenData | None:
    """The token if, at `now`, it is not revoked nor expired and its user (and project, when
    scoped) is enabled; else None."""
    row = await db.fetchrow(
        "SELECT t.*, u.name AS user_name, u.domain_id AS user_domain_id,"
        " p.name AS project_name, p.domain_id AS project_domain_id"
        " FROM tokens t JOIN users u ON u.id = t.user_id"
        " LEFT JOIN projects p ON p.id = t.project_id"
        " WHERE t.id_hash = $1 AND t.revoked = 0 AND t.expires_at > $2 AND u.enabled = 1"
        " AND (t.project_id IS NULL OR p.enabled = 1)",
        id_hash, now,
    )
    if row is None:
        return None
    project = None
    if row["project_id"] is not None:
        project = TokenProject(id=str(row["project_id"]), name=str(row["project_name"]),
                               domain_id=str(row["project_domain_id"]))
    return TokenData(
        id_hash=id_hash,
        user=TokenUser(id=str(row["user_id"]), name=str(row["user_name"]),
                       domain_id=str(row["user_domain_id"])),
        project=project,
        roles=tuple(Role(id=str(r["id"]), name=str(r["name"])) for r in json.loads(row["roles"])),
        methods=json.loads(row["methods"]),
        audit_ids=json.loads(row["audit_ids"]), issued_at=float(row["issued_at"]),
        expires_at=float(row["expires_at"]),
    )


async def audit_ids_of_live(db: Executor, user_id: str) -> dict[str, list[str]]:
    """The user's tokens not revoked: id hash -> audit ids (the chain's first token last)."""
    rows = await db.fetch("SELECT id_hash, audit_ids FROM tokens WHERE user_id = $1"
                          " AND revoked = 0", user_id)
    return {str(row["id_hash"]): list(json.loads(row["audit_ids"])) for row in rows}


async def revoke(db: Executor, id_hash: str) -> None:
    await db.execute("UPDATE tokens SET revoked = 1 WHERE id_hash = $1", id_hash)


async def revoke_of_user(db: Executor, user_id: str, project_id: str | None = None) -> int:
    """Revoke the user's tokens (those on one project only, when given); returns how many."""
    if project_id is None:
        return await db.execute("UPDATE tokens SET revoked = 1 WHERE user_id = $1", user_id)
    return await db.execute("UPDATE tokens SET revoked = 1 WHERE user_id = $1 AND project_id = $2",
                            user_id, project_id)


async def delete_expired_before(db: Executor, moment: float) -> int:
    return await db.execute("DELETE FROM tokens WHERE expires_at < $1", moment)
