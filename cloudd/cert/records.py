"""The cert family's rows (tables `certificates`, `host_join_tokens`): every statement on them.

`certificates` records each certificate the CAs issued (the CRL is written from its revoked
rows, the agent listener admits only serials recorded as an agent's); `host_join_tokens` holds
the sha256 of each one-time enrolment token.
"""

from __future__ import annotations

from dataclasses import dataclass

from cloudd.db import Executor


@dataclass(frozen=True)
class IssuedCertificate:
    """What the agent listener checks of a presented certificate's row."""

    serial: str  # hex, as in the CRL
    kind: str  # 'user' (os-certificates), 'agent', 'controller'
    host: str | None  # agent and controller certificates: the host's name
    revoked: bool


@dataclass(frozen=True)
class RevokedSerial:
    serial: int
    revoked_at: float


@dataclass(frozen=True)
class JoinToken:
    host: str
    expires_at: float


async def record(db: Executor, *, serial: str, subject: str, kind: str, user_id: str | None,
                 project_id: str | None, host: str | None, created_at: float,
                 expires_at: float) -> None:
    await db.execute(
        "INSERT INTO certificates (serial, subject, kind, user_id, project_id, host, created_at,"
        " expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        serial, subject, kind, user_id, project_id, host, created_at, expires_at)


async def get(db: Executor, serial: str) -> IssuedCertificate | None:
    row = await db.fetchrow("SELECT kind, host, revoked FROM certificates WHERE serial = $1", serial)
    if row is None:
        return None
    return IssuedCertificate(serial=serial, kind=str(row["kind"]), host=row["host"],
                             revoked=bool(row["revoked"]))


async def mark_revoked(db: Executor, now: float, *, user_id: str | None = None,
                       project_id: str | None = None, agent_host: str | None = None) -> int:
    """Revoke the unrevoked certificates matching every filter given (a user's, a project's,
    or both; a host's agent certificates); returns how many."""
    conditions: list[str] = []
    args: list[str] = []
    for column, value in (("user_id", user_id), ("project_id", project_id), ("host", agent_host)):
        if value is not None:
            args.append(value)
            conditions.append(f"{column} = ${len(args)}")
    if agent_host is not None:
        conditions.append("kind = 'agent'")
    if not args:
        raise ValueError("revoking needs a user, a project or a host")
    return await db.execute(
        f"UPDATE certificates SET revoked = 1, revoked_at = ${len(args) + 1}"
        f" WHERE revoked = 0 AND {' AND '.join(conditions)}", *args, now)


async def revoked(db: Executor) -> list[RevokedSerial]:
    """Every revoked certificate (the CRL's entries)."""
    rows = await db.fetch("SELECT serial, revoked_at FROM certificates WHERE revoked = 1")
    return [RevokedSerial(int(r["serial"], 16), float(r["revoked_at"])) for r in rows]


async def agent_hosts_revoked_since(db: Executor, since: float) -> set[str]:
    rows = await db.fetch(
        "SELECT DISTINCT host FROM certificates WHERE kind = 'agent' AND revoked = 1"
        " AND revoked_at >= $1", since)
    return {str(row["host"]) for row in rows}


# ----- join tokens ------------------------------------------------------------------------
async def add_join_token(db: Executor, token_hash: str, host: str, created_at: float,
                         expires_at: float) -> None:
    await db.execute(
        "INSERT INTO host_join_tokens (token_hash, host, created_at, expires_at)"
        " VALUES ($1, $2, $3, $4)", token_hash, host, created_at, expires_at)


async def take_join_token(db: Executor, token_hash: str) -> JoinToken | None:
    """Remove the token and return what it was for (None if there is none). The DELETE ...
    RETURNING is the compare: two racing redemptions cannot both win."""
    row = await db.fetchrow(
        "DELETE FROM host_join_tokens WHERE token_hash = $1 RETURNING host, expires_at", token_hash)
    return None if row is None else JoinToken(str(row["host"]), float(row["expires_at"]))
