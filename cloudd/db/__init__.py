"""cloudd's storage layer: one Database interface over SQLite (aiosqlite) and PostgreSQL (asyncpg).

See docs/architecture.md, "Database interface".
"""

from __future__ import annotations

from cloudd.db.base import (
    Database,
    DatabaseError,
    DuplicateError,
    Executor,
    IntegrityError,
    Row,
    redact_url,
)
from cloudd.db.conditional import conditional_update, insert

__all__ = [
    "Database",
    "DatabaseError",
    "DuplicateError",
    "Executor",
    "IntegrityError",
    "Row",
    "conditional_update",
    "connect",
    "insert",
]


async def connect(url: str, pool_size: int = 10) -> Database:
    """Open the database at `url`; `pool_size` caps PostgreSQL's connection pool.

    sqlite:///abs/path.db, sqlite://relative.db, sqlite://:memory:,
    postgresql://user[:password]@host:port/dbname (also postgres://).
    """
    scheme, _, rest = url.partition("://")
    if scheme == "sqlite" and rest:
        from cloudd.db import sqlite

        return await sqlite.open_database(url, rest)
    if scheme in ("postgresql", "postgres"):
        from cloudd.db import postgres

        return await postgres.open_database(url, pool_size)
    raise DatabaseError(
        f"unsupported database URL {redact_url(url)!r}: use sqlite:// or postgresql://"
    )
