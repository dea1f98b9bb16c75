"""The agents' reports already applied (`agent_reports`), by idempotency key: what makes an
agent's retried report (its reply lost with the link) a no-op instead of a second change."""

from __future__ import annotations

from cloudd.db import Executor


async def claim_report(tx: Executor, key: str, host: str, now: float) -> bool:
    """Record `key` as applied; False when it already was (the caller skips the change). Run
    in the transaction of the change, so a key is recorded exactly when its change is."""
    inserted = await tx.execute(
        "INSERT INTO agent_reports (report_key, host, applied_at) VALUES ($1, $2, $3)"
        " ON CONFLICT (report_key) DO NOTHING", key, host, now)
    return inserted == 1


async def report_applied(db: Executor, key: str) -> bool:
    return bool(await db.fetchval(
        "SELECT COUNT(*) FROM agent_reports WHERE report_key = $1", key))


async def prune_reports(db: Executor, before: float) -> int:
    """Forget keys applied before `before`; returns how many."""
    return await db.execute("DELETE FROM agent_reports WHERE applied_at < $1", before)
