"""Key pairs (table `key_pairs`): every statement on them, returning `KeyPair` records. The
Compute API's /os-keypairs, EC2's key pair actions, a server create and the key_pairs quota
all use these."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cloudd.db import Executor


@dataclass(frozen=True)
class KeyPair:
    id: int
    name: str
    user_id: str
    project_id: str
    fingerprint: str
    public_key: str
    type: str
    created_at: float

    @classmethod
    def from_row(cls, row: Any) -> KeyPair:
        return cls(id=int(row["id"]), name=str(row["name"]), user_id=str(row["user_id"]),
                   project_id=str(row["project_id"]), fingerprint=str(row["fingerprint"]),
                   public_key=str(row["public_key"]), type=str(row["type"]),
                   created_at=float(row["created_at"]))


async def list_for_user(db: Executor, user_id: str) -> list[KeyPair]:
    rows = await db.fetch("SELECT * FROM key_pairs WHERE user_id = $1 ORDER BY name", user_id)
    return [KeyPair.from_row(r) for r in rows]


async def get(db: Executor, user_id: str, name: str) -> KeyPair | None:
    row = await db.fetchrow("SELECT * FROM key_pairs WHERE user_id = $1 AND name = $2",
                            user_id, name)
    return None if row is None else KeyPair.from_row(row)


async def insert(tx: Executor, *, name: str, user_id: str, project_id: str, fingerprint: str,
                 public_key: str, key_type: str, now: float) -> KeyPair:
    """The new key pair (DuplicateError when the user has a key of that name); the quota check
    is the caller's, in the same transaction (`cloudd.compute.keypair_api.create`)."""
    row = await tx.fetchrow(
        "INSERT INTO key_pairs (name, user_id, project_id, fingerprint, public_key, type,"
        " created_at) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING *",
        name, user_id, project_id, fingerprint, public_key, key_type, now)
    assert row is not None
    return KeyPair.from_row(row)


async def count_for_user(db: Executor, user_id: str) -> int:
    """The user's key pairs (the key_pairs quota counts them per user, as Nova does)."""
    count = await db.fetchval("SELECT COUNT(*) FROM key_pairs WHERE user_id = $1", user_id)
    return int(count or 0)


async def delete(db: Executor, key_id: int) -> None:
    await db.execute("DELETE FROM key_pairs WHERE id = $1", key_id)


async def delete_by_name(db: Executor, user_id: str, name: str) -> None:
    await db.execute("DELETE FROM key_pairs WHERE user_id = $1 AND name = $2", user_id, name)
