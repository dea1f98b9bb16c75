"""`ec2_client_tokens`: RunInstances' ClientToken -> the reservation its first call made.

A claimed token holds `''` until the first call's instances exist; a failed first call removes it.
"""

from __future__ import annotations

import time

from cloudd.db import DuplicateError, Executor


async def claim(db: Executor, project_id: str, token: str) -> bool:
    """True if this call owns `token` now (False: an earlier call claimed it)."""
    try:
        await db.execute("INSERT INTO ec2_client_tokens (project_id, client_token,"
                         " reservation_id, created_at) VALUES ($1, $2, '', $3)",
                         project_id, token, time.time())
        return True
    except DuplicateError:
        return False


async def reservation_of(db: Executor, project_id: str, token: str) -> str | None:
    """The reservation the token's call made (`''` while it is still creating; None if no
    claim is held, e.g. the first call failed)."""
    found = await db.fetchval("SELECT reservation_id FROM ec2_client_tokens WHERE"
                              " project_id = $1 AND client_token = $2", project_id, token)
    return None if found is None else str(found)


async def release(db: Executor, project_id: str, token: str) -> None:
    await db.execute("DELETE FROM ec2_client_tokens WHERE project_id = $1 AND"
                     " client_token = $2", project_id, token)


async def settle(db: Executor, project_id: str, token: str, reservation_id: str) -> None:
    """The token's call made `reservation_id`: later calls with it return that reservation."""
    await db.execute("UPDATE ec2_client_tokens SET reservation_id = $1 WHERE"
                     " project_id = $2 AND client_token = $3", reservation_id, project_id, token)
