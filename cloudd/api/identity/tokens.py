"""Token storage: opaque random tokens, kept only as their sha256, with roles frozen at issue time.

A token is valid while it is not revoked, not expired, and its user (and project, if scoped)
are still enabled. Roles are stored already expanded with Keystone's implied roles
(admin => member => reader).
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cloudd.db import Executor, Row

# Keystone's default implied-role chain.
IMPLIED_ROLES = {"admin": ("member",), "member": ("reader",)}
DEFAULT_DOMAIN = {"id": "default", "name": "Default"}


@dataclass(frozen=True)
class TokenData:
    id_hash: str
    user: dict[str, Any]             # id, name, domain_id
    project: dict[str, Any] | None   # id, name, domain_id; None when unscoped
    roles: list[dict[str, str]]      # [{"id", "name"}], implied roles included
    methods: list[str]
    audit_ids: list[str]
    issued_at: float
    expires_at: float


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def isotime(timestamp: float) -> str:
    """Keystone's token time format: microseconds and a Z."""
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def expand_implied(names: set[str]) -> set[str]:
    expanded = set(names)
    pending = list(names)
    while pending:
        for implied in IMPLIED_ROLES.get(pending.pop(), ()):
            if implied not in expanded:
                expanded.add(implied)
                pending.append(implied)
    return expanded


async def effective_roles(db: Executor, user_id: str, project_id: str) -> list[dict[str, str]]:
    """The user's roles on the project, implied ones added, sorted by name."""
    assigned = await db.fetch(
        "SELECT r.name FROM role_assignments a JOIN roles r ON r.id = a.role_id"
        " WHERE a.user_id = $1 AND a.project_id = $2", user_id, project_id,
    )
    if not assigned:
        return []
    names = expand_implied({str(row["name"]) for row in assigned})
    rows = await db.fetch("SELECT id, name FROM roles")
    return sorted(({"id": str(r["id"]), "name": str(r["name"])} for r in rows
                   if r["name"] in names), key=lambda role: role["name"])


async def issue_token(
    db: Executor, user: Row, project: Row | None, methods: list[str], lifetime: float,
    parent: TokenData | None = None,
) -> tuple[str, TokenData]:
    """Store a new token and return (the token itself, its data). Nothing else ever sees it."""
    token = secrets.token_urlsafe(32)
    now = time.time()
    # A re-scoped token lives no longer than the one it came from and shares its audit chain:
    # Keystone's audit_chain_id, the first token's audit id, last in the list.
    expires_at = parent.expires_at if parent else now + lifetime
    audit_ids = [secrets.token_urlsafe(16)] + (parent.audit_ids[-1:] if parent else [])
    roles = await effective_roles(db, user["id"], project["id"]) if project else []
    data = TokenData(
        id_hash=hash_token(token),
        user={"id": user["id"], "name": user["name"], "domain_id": user["domain_id"]},
        project=({"id": project["id"], "name": project["name"], "domain_id": project["domain_id"]}
                 if project else None),
        roles=roles, methods=methods, audit_ids=audit_ids, issued_at=now, expires_at=expires_at,
    )
    await db.execute(
        "INSERT INTO tokens (id_hash, user_id, project_id, roles, methods, audit_ids, issued_at,"
        " expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        data.id_hash, user["id"], project["id"] if project else None, json.dumps(roles),
        json.dumps(methods), json.dumps(audit_ids), now, expires_at,
    )
    return token, data


async def load_token(db: Executor, id_hash: str) -> TokenData | None:
    """The token's data if it is valid right now, else None."""
    row = await db.fetchrow(
        "SELECT t.*, u.name AS user_name, u.domain_id AS user_domain_id,"
        " p.name AS project_name, p.domain_id AS project_domain_id"
        " FROM tokens t JOIN users u ON u.id = t.user_id"
        " LEFT JOIN projects p ON p.id = t.project_id"
        " WHERE t.id_hash = $1 AND t.revoked = 0 AND t.expires_at > $2 AND u.enabled = 1"
        " AND (t.project_id IS NULL OR p.enabled = 1)",
        id_hash, time.time(),
    )
    if row is None:
        return None
    project = None
    if row["project_id"] is not None:
        project = {"id": row["project_id"], "name": row["project_name"],
                   "domain_id": row["project_domain_id"]}
    return TokenData(
        id_hash=id_hash,
        user={"id": row["user_id"], "name": row["user_name"], "domain_id": row["user_domain_id"]},
        project=project, roles=json.loads(row["roles"]), methods=json.loads(row["methods"]),
        audit_ids=json.loads(row["audit_ids"]), issued_at=float(row["issued_at"]),
        expires_at=float(row["expires_at"]),
    )


async def revoke_token(db: Executor, data: TokenData) -> list[str]:
    """Revoke the token and every token of its audit chain (the one it was re-scoped from and
    those re-scoped from either), which Keystone names revoking by audit_chain_id: a token
    obtained from a revoked one must not outlive it. Returns the id hashes revoked."""
    chain = data.audit_ids[-1]
    rows = await db.fetch("SELECT id_hash, audit_ids FROM tokens WHERE user_id = $1"
                          " AND revoked = 0", data.user["id"])
    hashes = [str(row["id_hash"]) for row in rows
              if row["id_hash"] == data.id_hash or json.loads(row["audit_ids"])[-1:] == [chain]]
    for id_hash in hashes:
        await db.execute("UPDATE tokens SET revoked = 1 WHERE id_hash = $1", id_hash)
    return hashes


async def revoke_user_tokens(db: Executor, user_id: str, project_id: str | None = None) -> int:
    """Revoke a user's tokens (on one project only, when given): their roles changed."""
    if project_id is None:
        return await db.execute("UPDATE tokens SET revoked = 1 WHERE user_id = $1", user_id)
    return await db.execute("UPDATE tokens SET revoked = 1 WHERE user_id = $1 AND project_id = $2",
                            user_id, project_id)


async def purge_expired(db: Executor, grace: float = 3600.0) -> int:
    """Delete tokens expired for more than `grace` seconds (kept a while for audit)."""
    return await db.execute("DELETE FROM tokens WHERE expires_at < $1", time.time() - grace)


def _domain(domain_id: str) -> dict[str, str]:
    return DEFAULT_DOMAIN if domain_id == "default" else {"id": domain_id, "name": domain_id}


def token_body(data: TokenData, catalog: list[dict[str, Any]] | None) -> dict[str, Any]:
    """The `{"token": ...}` document Keystone returns on issue and validation."""
    body: dict[str, Any] = {
        "methods": data.methods,
        "user": {"id": data.user["id"], "name": data.user["name"],
                 "domain": _domain(data.user["domain_id"]), "password_expires_at": None},
        "audit_ids": data.audit_ids,
        "issued_at": isotime(data.issued_at),
        "expires_at": isotime(data.expires_at),
    }
    if data.project is not None:
        body["project"] = {"id": data.project["id"], "name": data.project["name"],
                           "domain": _domain(data.project["domain_id"])}
        body["is_domain"] = False
        body["roles"] = data.roles
        if catalog is not None:
            body["catalog"] = catalog
    return {"token": body}
