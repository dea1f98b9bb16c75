"""Console tokens (nova-consoleauth's store, kept in the database as current Nova does).

A token is ``secrets.token_urlsafe(32)``; only its sha256 is stored, with the server, the
server's compute host, the VNC host:port and an expiry. Tokens are multi-use within their TTL
(as in Nova) and are deleted when the server is deleted; a token made before the server moved to
another host no longer opens anything. Tokens are never logged: log lines name the server.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

from cloudd import errors
from cloudd.compute import instances
from cloudd.db import Database, Executor
from cloudd.rpc.contracts.instance import Instance

# Expired rows are kept this long so that a late user is told "expired", not "unknown".
EXPIRED_GRACE = 3600.0


class TokenRefused(errors.Forbidden):
    """Why a console token opens nothing; the text is meant for the user (the proxy's 403)."""


@dataclass(frozen=True)
class ConsoleConnection:
    instance_uuid: str
    project_id: str
    console_type: str
    host: str
    port: int
    expires: float


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def authorize_console(db: Database, instance: Instance, console_type: str,
                            host: str, port: int, ttl: float) -> str:
    """A new token for `instance`'s console at host:port; returns the token itself."""
    token = secrets.token_urlsafe(32)
    now = time.time()
    await db.execute(
        "INSERT INTO console_auth_tokens (token_hash, console_type, instance_uuid, project_id,"
        " compute_host, host, port, created_at, expires) VALUES ($1, $2, $3, $4, $5, $6, $7, $8,"
        " $9)", token_hash(token), console_type, instance.uuid, instance.project_id,
        instance.host or "", host, port, now, now + ttl)
    return token


async def check_token(db: Database, token: str) -> ConsoleConnection:
    """The connection a token opens, or TokenRefused saying why."""
    if not token:
        raise TokenRefused("no console token was given")
    digest = token_hash(token)
    row = await db.fetchrow("SELECT * FROM console_auth_tokens WHERE token_hash = $1", digest)
    # The lookup is by hash; the comparison of what was found is constant-time anyway.
    if row is None or not hmac.compare_digest(str(row["token_hash"]), digest):
        raise TokenRefused("invalid console token: unknown, or its server was deleted")
    if row["expires"] < time.time():
        raise TokenRefused("the console token has expired; ask for a new console URL")
    try:
        instance = await instances.get(db, row["instance_uuid"])
    except instances.InstanceNotFound:
        raise TokenRefused("the console token's server was deleted") from None
    if instance.project_id != row["project_id"]:
        raise TokenRefused("invalid console token")
    if (instance.host or "") != row["compute_host"]:
        raise TokenRefused("the server has moved to another host; ask for a new console URL")
    return ConsoleConnection(row["instance_uuid"], row["project_id"], row["console_type"],
                             row["host"], int(row["port"]), row["expires"])


async def delete_tokens_for_instance(db: Executor, instance_uuid: str) -> int:
    """nova-consoleauth's delete_tokens_for_instance: called when the server is deleted."""
    return await db.execute("DELETE FROM console_auth_tokens WHERE instance_uuid = $1",
                            instance_uuid)


async def purge_expired(db: Database, grace: float = EXPIRED_GRACE) -> int:
    return await db.execute("DELETE FROM console_auth_tokens WHERE expires < $1",
                            time.time() - grace)
