"""Console tokens on SQLite and PostgreSQL: hashed at rest, expiring, bound to the server, its
project and its host, and gone with the server."""

from __future__ import annotations

import time
import uuid

import pytest

from cloudd.compute.instances import from_row
from cloudd.consoleauth import tokens
from cloudd.consoleauth.service import console_url
from cloudd.db import Database


async def make_instance(db: Database, project_id: str = "p1", host: str = "h1") -> dict[str, object]:
    row = await db.fetchrow(
        "INSERT INTO instances (uuid, name, project_id, user_id, flavor, vcpus, memory_mb, vm_state,"
        " host, created_at, updated_at) VALUES ($1, 'vm', $2, 'u1', '{}', 1, 64, 'active', $3, $4,"
        " $4) RETURNING *",
        str(uuid.uuid4()), project_id, host, time.time())
    assert row is not None
    return row


async def test_a_token_opens_its_servers_console_only(db: Database) -> None:
    instance = await make_instance(db)
    token = await tokens.authorize_console(db, from_row(instance), "novnc", "10.0.0.5", 5901, ttl=600)
    assert len(token) >= 40
    # Only the hash is stored.
    stored = await db.fetch("SELECT * FROM console_auth_tokens")
    assert [r["token_hash"] for r in stored] == [tokens.token_hash(token)]
    assert token not in str(stored)
    found = await tokens.check_token(db, token)
    assert (found.instance_uuid, found.host, found.port) == (instance["uuid"], "10.0.0.5", 5901)
    assert (await tokens.check_token(db, token)).port == 5901  # multi-use within the TTL
    other = await tokens.authorize_console(db, from_row(instance), "novnc", "10.0.0.5", 5901, ttl=600)
    assert other != token


@pytest.mark.parametrize("forged", ["", "x", "A" * 43])
async def test_forged_tokens_are_refused(db: Database, forged: str) -> None:
    instance = await make_instance(db)
    await tokens.authorize_console(db, from_row(instance), "novnc", "127.0.0.1", 5900, ttl=600)
    with pytest.raises(tokens.TokenRefused):
        await tokens.check_token(db, forged)


async def test_expired_tokens_say_so_and_are_purged_later(db: Database) -> None:
    instance = await make_instance(db)
    token = await tokens.authorize_console(db, from_row(instance), "novnc", "127.0.0.1", 5900, ttl=600)
    await db.execute("UPDATE console_auth_tokens SET expires = $1", time.time() - 1)
    with pytest.raises(tokens.TokenRefused, match="expired"):
        await tokens.check_token(db, token)
    assert await tokens.purge_expired(db) == 0  # kept a while to say "expired"
    assert await tokens.purge_expired(db, grace=0) == 1
    with pytest.raises(tokens.TokenRefused, match="unknown"):
        await tokens.check_token(db, token)


async def test_deleted_or_moved_servers_invalidate_tokens(db: Database) -> None:
    instance = await make_instance(db)
    token = await tokens.authorize_console(db, from_row(instance), "novnc", "127.0.0.1", 5900, ttl=600)
    await db.execute("UPDATE instances SET host = 'h2' WHERE uuid = $1", instance["uuid"])
    with pytest.raises(tokens.TokenRefused, match="moved"):
        await tokens.check_token(db, token)
    await db.execute("UPDATE instances SET host = 'h1', deleted = 1 WHERE uuid = $1",
                     instance["uuid"])
    with pytest.raises(tokens.TokenRefused, match="deleted"):
        await tokens.check_token(db, token)
    assert await tokens.delete_tokens_for_instance(db, str(instance["uuid"])) == 1
    with pytest.raises(tokens.TokenRefused, match="unknown"):
        await tokens.check_token(db, token)


def test_console_url_carries_the_token_in_novncs_path() -> None:
    assert console_url("http://h:6080/vnc_lite.html", "a-b_c") == (
        "http://h:6080/vnc_lite.html?path=%3Ftoken%3Da-b_c")
    assert console_url("http://h:6080/vnc.html?autoconnect=true", "t") == (
        "http://h:6080/vnc.html?autoconnect=true&path=%3Ftoken%3Dt")
