"""Row helpers built from dicts: INSERT ... RETURNING and Nova's compare-and-swap UPDATE.

Table and column names are checked against a strict pattern and then quoted, so callers can never
smuggle SQL through a dict key; every value travels as a bound parameter.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from cloudd.db.base import Executor, Row

_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*$")
_COLLECTIONS = (list, tuple, set, frozenset)


def quote_identifier(name: str) -> str:
    """A table/column name, double-quoted (`binary` needs it on PostgreSQL); rejects odd names."""
    if not _IDENTIFIER.match(name):
        raise ValueError(f"not a valid table or column name: {name!r}")
    return f'"{name}"'


def _condition(column: str, wanted: Any, args: list[Any]) -> str:
    """One WHERE term for `column`; appends its bound values to `args`.

    None means IS NULL; a collection means "any of these", where None in it also admits NULL.
    """
    if wanted is None:
        return f"{column} IS NULL"
    if not isinstance(wanted, _COLLECTIONS):
        args.append(wanted)
        return f"{column} = ${len(args)}"
    terms = []
    values = [value for value in wanted if value is not None]
    if values:
        placeholders = []
        for value in values:
            args.append(value)
            placeholders.append(f"${len(args)}")
        terms.append(f"{column} IN ({', '.join(placeholders)})")
    if None in wanted:
        terms.append(f"{column} IS NULL")
    return f"({' OR '.join(terms)})" if terms else "1 = 0"  # an empty collection matches nothing


async def insert(db: Executor, table: str, values: Mapping[str, Any]) -> Row:
    """INSERT one row and return it as stored (with its generated id and defaults)."""
    if not values:
        sql = f"INSERT INTO {quote_identifier(table)} DEFAULT VALUES RETURNING *"
        return await _fetch_one(db, sql)
    columns = ", ".join(quote_identifier(column) for column in values)
    placeholders = ", ".join(f"${position}" for position in range(1, len(values) + 1))
    sql = f"INSERT INTO {quote_identifier(table)} ({columns}) VALUES ({placeholders}) RETURNING *"
    return await _fetch_one(db, sql, *values.values())


async def conditional_update(
    db: Executor,
    table: str,
    key: Mapping[str, Any],
    values: Mapping[str, Any],
    expected: Mapping[str, Any] | None = None,
) -> Row | None:
    """UPDATE the row identified by `key` only if its columns hold `expected`; return the new row.

    Returns None when no row matched (gone, or not in the expected state): of two racing callers
    expecting the same state, exactly one gets the row back. This is Nova's expected_task_state.
    """
    if not key:
        raise ValueError("conditional_update needs a key: refusing to update a whole table")
    if not values:
        raise ValueError("conditional_update needs at least one column to set")
    quoted_table = quote_identifier(table)
    args: list[Any] = list(values.values())
    assignments = ", ".join(
        f"{quote_identifier(column)} = ${position}" for position, column in enumerate(values, 1)
    )
    # Table-qualified in WHERE: SQLite then rejects a misspelt column instead of reading "typo"
    # as a string literal.
    conditions = [
        _condition(f"{quoted_table}.{quote_identifier(column)}", wanted, args)
        for column, wanted in [*key.items(), *(expected or {}).items()]
    ]
    sql = f"UPDATE {quoted_table} SET {assignments} WHERE {' AND '.join(conditions)} RETURNING *"
    return await db.fetchrow(sql, *args)


async def _fetch_one(db: Executor, sql: str, *args: Any) -> Row:
    row = await db.fetchrow(sql, *args)
    assert row is not None, "INSERT ... RETURNING returned no row"
    return row
