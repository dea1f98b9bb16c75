"""The server password a guest posts to the metadata service (Nova's os-server-password): kept
in the instance's system_metadata, set once by the guest, read and cleared by the owner."""

from __future__ import annotations

import json
import time

from cloudd.compute.instances.records import InstanceNotFound, decode_json
from cloudd.db import Executor

PASSWORD_KEY = "password"  # Nova splits it over password_0..3; one JSON value holds it here
MAX_PASSWORD = 256  # bytes, as Nova's metadata handler takes at most
_TRIES = 10  # compare-and-swap rounds against other writers of system_metadata


async def password_of(db: Executor, uuid: str) -> str:
    """The stored password ("" when none), of a live instance (InstanceNotFound)."""
    current = await _system_metadata(db, uuid)
    value = decode_json(current).get(PASSWORD_KEY)
    return value if isinstance(value, str) else ""


async def set_password_once(db: Executor, uuid: str, password: str) -> bool:
    """The guest's password, unless one is set (False): Nova's 409 "already set"."""
    return await _swap(db, uuid, password, only_if_unset=True)


async def clear_password(db: Executor, uuid: str) -> None:
    await _swap(db, uuid, None, only_if_unset=False)


async def _system_metadata(db: Executor, uuid: str) -> str:
    text = await db.fetchval(
        "SELECT system_metadata FROM instances WHERE uuid = $1 AND deleted = 0", uuid)
    if text is None:
        raise InstanceNotFound(uuid)
    return str(text)


async def _swap(db: Executor, uuid: str, password: str | None, only_if_unset: bool) -> bool:
    """Write the key only over the system_metadata read (another writer's change is kept)."""
    for _ in range(_TRIES):
        text = await _system_metadata(db, uuid)
        current = decode_json(text)
        if only_if_unset and current.get(PASSWORD_KEY):
            return False
        current.pop(PASSWORD_KEY, None)
        if password is not None:
            current[PASSWORD_KEY] = password
        if await db.fetchrow(
                "UPDATE instances SET system_metadata = $1, updated_at = $2 WHERE uuid = $3"
                " AND deleted = 0 AND system_metadata = $4 RETURNING id",
                json.dumps(current), time.time(), uuid, text) is not None:
            return True
    raise RuntimeError(f"instance {uuid}: system_metadata kept changing; password not saved")
