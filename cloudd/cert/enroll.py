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
import secrets
import time
from pathlib import Path

from cloudd.cert import records
from cloudd.cert.ca import CertificateAuthority, load_hosts_ca
from cloudd.cert.common import split_join_token
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
    await records.add_join_token(db, _hash(secret), host, now, now + ttl)
    return f"{secret}.{ca.fingerprint()}"


async def redeem_join_token(db: Database, token: str) -> str | None:
    """The host a valid, unexpired, unused token was made for; the token is used up (taking
    it is atomic: two racing redemptions cannot both win)."""
    try:
        secret, _ = split_join_token(token)
    except ValueError:
        return None
    taken = await records.take_join_token(db, _hash(secret))
    if taken is None or taken.expires_at < time.time():
        return None
    return taken.host


# ----- revocation -------------------------------------------------------------------------
async def revoke_host(db: Database, ca_path: str | Path, host: str) -> int:
    return await _revoke(db, ca_path, agent_host=host)


async def revoke_user(db: Database, ca_path: str | Path, user_id: str) -> int:
    return await _revoke(db, ca_path, user_id=user_id)


async def revoke_project(db: Database, ca_path: str | Path, project_id: str) -> int:
    return await _revoke(db, ca_path, project_id=project_id)


async def _revoke(db: Database, ca_path: str | Path, *, user_id: str | None = None,
                  project_id: str | None = None, agent_host: str | None = None) -> int:
    """Mark the matching certificates revoked, then rewrite crl.pem; returns how many."""
    count = await records.mark_revoked(db, time.time(), user_id=user_id, project_id=project_id,
                                       agent_host=agent_host)
    ca = await asyncio.to_thread(CertificateAuthority.load_or_create, ca_path)
    await write_crl(db, ca)
    return count


async def write_crl(db: Database, ca: CertificateAuthority) -> frozenset[int]:
    """crl.pem from the table; returns the revoked serials."""
    revoked = [(entry.serial, dt.datetime.fromtimestamp(entry.revoked_at, dt.UTC))
               for entry in await records.revoked(db)]
    await asyncio.to_thread(ca.write_crl, revoked)
    return frozenset(serial for serial, _ in revoked)
