"""Host enrolment and revocation, for `cloudd manage` and for the controller.

`enroll_host(db, host, ca_path)` makes a one-time join token for a new compute host. The token is
``<secret>.<sha256 of the hosts CA certificate>``: the agent pins the hosts CA with the second half
before it trusts anything the controller sends, and proves itself with the first half (only its
sha256 is stored). The agent redeems it once on the controller's enrolment listener (``POST
/enroll`` on ``[rpc] enroll_port``) with a CSR; its key never leaves the host.

The revoke functions work from any process (they update the table and rewrite crl.pem); a
running controller refuses the revoked certificates at their next connection and cuts live ones
off within a heartbeat interval (CertService's periodic check).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import hmac
import secrets
import time
from pathlib import Path
from typing import Any

from cloudd.cert.ca import CertificateAuthority, load_hosts_ca
from cloudd.db import Database

JOIN_TOKEN_TTL = 24 * 3600.0


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


async def enroll_host(db: Database, host: str, ca_path: str | Path,
                      ttl: float = JOIN_TOKEN_TTL) -> str:
    """A one-time join token for `host` (the hosts CA is created if the controller never ran)."""
    if not host or len(host) > 255:
        raise ValueError("a host name is required")
    ca = await asyncio.to_thread(load_hosts_ca, ca_path)
    secret = secrets.token_urlsafe(32)
    now = time.time()
    await db.execute(
        "INSERT INTO host_join_tokens (token_hash, host, created_at, expires_at)"
        " VALUES ($1, $2, $3, $4)", _hash(secret), host, now, now + ttl)
    return f"{secret}.{ca.fingerprint()}"


def split_join_token(token: str) -> tuple[str, str]:
    """(secret, CA fingerprint); ValueError for something that is not a join token."""
    secret, dot, fingerprint = token.strip().rpartition(".")
    if not dot or not secret or len(fingerprint) != 64:
        raise ValueError("malformed join token")
    return secret, fingerprint.lower()


async def redeem_join_token(db: Database, token: str) -> str | None:
    """The host a valid, unexpired, unused token was made for; the token is used up. The
    DELETE ... RETURNING is the compare: two racing redemptions cannot both win."""
    try:
        secret, _ = split_join_token(token)
    except ValueError:
        return None
    row = await db.fetchrow(
        "DELETE FROM host_join_tokens WHERE token_hash = $1 RETURNING host, expires_at",
        _hash(secret))
    if row is None or row["expires_at"] < time.time():
        return None
    return str(row["host"])


def fingerprint_matches(expected: str, actual: str) -> bool:
    return hmac.compare_digest(expected.lower(), actual.lower())


# ----- revocation -------------------------------------------------------------------------
async def revoke_host(db: Database, ca_path: str | Path, host: str) -> int:
    return await revoke_where(db, ca_path, "host = $1 AND kind = 'agent'", host)


async def revoke_user(db: Database, ca_path: str | Path, user_id: str) -> int:
    return await revoke_where(db, ca_path, "user_id = $1", user_id)


async def revoke_project(db: Database, ca_path: str | Path, project_id: str) -> int:
    return await revoke_where(db, ca_path, "project_id = $1", project_id)


async def revoke_where(db: Database, ca_path: str | Path, where: str, *args: Any) -> int:
    """Mark the matching certificates revoked, then rewrite crl.pem; returns how many."""
    count = await mark_revoked(db, where, *args)
    ca = await asyncio.to_thread(CertificateAuthority.load_or_create, ca_path)
    await write_crl(db, ca)
    return count


async def mark_revoked(db: Database, where: str, *args: Any) -> int:
    return await db.execute(
        f"UPDATE certificates SET revoked = 1, revoked_at = ${len(args) + 1}"
        f" WHERE revoked = 0 AND {where}", *args, time.time())


async def write_crl(db: Database, ca: CertificateAuthority) -> frozenset[int]:
    """crl.pem from the table; returns the revoked serials."""
    rows = await db.fetch("SELECT serial, revoked_at FROM certificates WHERE revoked = 1")
    revoked = [(int(r["serial"], 16), dt.datetime.fromtimestamp(r["revoked_at"], dt.UTC))
               for r in rows]
    await asyncio.to_thread(ca.write_crl, revoked)
    return frozenset(serial for serial, _ in revoked)
