"""Tokens: opaque random tokens, kept only as their sha256 (in cloudd.identity.store.tokens),
with roles frozen at issue time.

A token is valid while it is not revoked, not expired, and its user (and project, if scoped)
are still enabled. Roles are stored already expanded with Keystone's implied roles
(admin => member => reader).
"""

from __future__ import annotations

import hashlib
import secrets
import time
from datetime import UTC, datetime
from typing import Any

from cloudd.db import Executor
from cloudd.identity import store
from cloudd.identity.records import Project, Role, TokenData, TokenProject, TokenUser, User

# Keystone's default implied-role chain.
IMPLIED_ROLES = {"admin": ("member",), "member": ("reader",)}
DEFAULT_DOMAIN = {"id": "default", "name": "Default"}


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


async def effective_roles(db: Executor, user_id: str, project_id: str) -> list[Role]:
    """The user's roles on the project, implied ones added, sorted by name."""
    assigned = await store.roles.assigned_names(db, user_id, project_id)
    if not assigned:
        return []
    names = expand_implied(assigned)
    return sorted((role for role in await store.roles.list_all(db) if role.name in names),
                  key=lambda role: role.name)


async def issue_token(
    db: Executor, user: User, project: Project | None, methods: list[str], lifetime: float,
    parent: TokenData | None = None,
) -> tuple[str, TokenData]:
    """Store a new token and return (the token itself, its data). Nothing else ever sees it."""
    token = secrets.token_urlsafe(32)
    now = time.time()
    # A re-scoped token lives no longer than the one it came from and shares its audit chain:
    # Keystone's audit_chain_id, the first token's audit id, last in the list.
    expires_at = parent.expires_at if parent else now + lifetime
    audit_ids = [secrets.token_urlsafe(16)] + (parent.audit_ids[-1:] if parent else [])
    roles = await effective_roles(db, user.id, project.id) if project else []
    data = TokenData(
        id_hash=hash_token(token),
        user=TokenUser(id=user.id, name=user.name, domain_id=user.domain_id),
        project=(TokenProject(id=project.id, name=project.name, domain_id=project.domain_id)
                 if project else None),
        roles=tuple(roles), methods=methods, audit_ids=audit_ids, issued_at=now, expires_at=expires_at,
    )
    await store.tokens.insert(db, data)
    return token, data


async def load_token(db: Executor, id_hash: str) -> TokenData | None:
    """The token's data if it is valid right now, else None."""
    return await store.tokens.load_valid(db, id_hash, time.time())


async def revoke_token(db: Executor, data: TokenData) -> list[str]:
    """Revoke the token and every token of its audit chain (the one it was re-scoped from and
    those re-scoped from either), which Keystone names revoking by audit_chain_id: a token
    obtained from a revoked one must not outlive it. Returns the id hashes revoked."""
    chain = data.audit_ids[-1]
    live = await store.tokens.audit_ids_of_live(db, data.user.id)
    hashes = [id_hash for id_hash, audit_ids in live.items()
              if id_hash == data.id_hash or audit_ids[-1:] == [chain]]
    for id_hash in hashes:
        await store.tokens.revoke(db, id_hash)
    return hashes


async def revoke_user_tokens(db: Executor, user_id: str, project_id: str | None = None) -> int:
    """Revoke a user's tokens (on one project only, when given): their roles changed."""
    return await store.tokens.revoke_of_user(db, user_id, project_id)


async def purge_expired(db: Executor, grace: float = 3600.0) -> int:
    """Delete tokens expired for more than `grace` seconds (kept a while for audit)."""
    return await store.tokens.delete_expired_before(db, time.time() - grace)


def _domain(domain_id: str) -> dict[str, str]:
    return DEFAULT_DOMAIN if domain_id == "default" else {"id": domain_id, "name": domain_id}


def token_body(data: TokenData, catalog: list[dict[str, Any]] | None) -> dict[str, Any]:
    """The `{"token": ...}` document Keystone returns on issue and validation."""
    body: dict[str, Any] = {
        "methods": data.methods,
        "user": {"id": data.user.id, "name": data.user.name,
                 "domain": _domain(data.user.domain_id), "password_expires_at": None},
        "audit_ids": data.audit_ids,
        "issued_at": isotime(data.issued_at),
        "expires_at": isotime(data.expires_at),
    }
    if data.project is not None:
        body["project"] = {"id": data.project.id, "name": data.project.name,
                           "domain": _domain(data.project.domain_id)}
        body["is_domain"] = False
        body["roles"] = [{"id": role.id, "name": role.name} for role in data.roles]
        if catalog is not None:
            body["catalog"] = catalog
    return {"token": body}
