"""One page of GET /v2/images read in SQL: visibility, the column filters, the sort order and
the marker (keyset: rows after the marker's sort values) run in the database, so a request
reads about one page of rows whatever the number of images.

The SQL filters are a coarse first pass: every row is still checked by the exact
`cloudd.image.filters.matches` (tags and custom properties are only checked there), and rows
are fetched in batches until a page is full or the table is exhausted.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from multidict import MultiMapping

from cloudd.db import Executor
from cloudd.image import records

TEXT_KEYS = frozenset({"name", "status", "container_format", "disk_format", "id", "visibility",
                       "owner"})
FILTER_COLUMNS = ("name", "status", "owner", "disk_format", "container_format", "id")
VISIBILITIES = ("public", "private", "shared", "community")


class _Sql:
    """A WHERE clause and its arguments, numbered as they are added."""

    def __init__(self, dialect: str) -> None:
        self.dialect = dialect
        self.clauses: list[str] = []
        self.args: list[Any] = []

    def arg(self, value: Any) -> str:
        self.args.append(value)
        return f"${len(self.args)}"

    def column(self, key: str) -> str:
        """The column as it sorts: by code point on both backends, as Python sorts strings
        (PostgreSQL's default collation would not)."""
        if key in TEXT_KEYS and self.dialect == "postgresql":
            return f'{key} COLLATE "C"'
        return key


def _visible(sql: _Sql, project_id: str | None, is_admin: bool) -> None:
    """records.is_visible, as SQL."""
    if is_admin:
        return
    if project_id is None:
        sql.clauses.append("visibility IN ('public', 'community')")
        return
    project = sql.arg(project_id)
    sql.clauses.append(
        f"(visibility IN ('public', 'community') OR owner = {project} OR (visibility = 'shared'"
        f" AND EXISTS (SELECT 1 FROM image_members m WHERE m.image_id = images.id"
        f" AND m.member = {project})))")


def _wanted_values(wanted: str) -> list[str]:
    if wanted.startswith("in:"):
        return [part.strip().strip('"') for part in wanted[3:].split(",")]
    return [wanted.removeprefix("eq:")]


def _filters(sql: _Sql, query: MultiMapping[str], visibility: str | None, project_id: str | None) -> None:
    """Conservative SQL forms of the exact filters (never excluding a row they keep)."""
    for key in FILTER_COLUMNS:
        if key in query:
            values = _wanted_values(query[key])
            if "" not in values:  # "" also matches a NULL column: left to the exact check
                sql.clauses.append(f"{key} IN ({', '.join(sql.arg(v) for v in values)})")
    if visibility in VISIBILITIES:
        sql.clauses.append(f"visibility = {sql.arg(visibility)}")
    elif visibility is None:  # community images are listed only to their owner unless asked
        sql.clauses.append(f"(visibility <> 'community' OR owner = {sql.arg(project_id or '')})")
    hidden = query.get("os_hidden", "false").lower() == "true"
    sql.clauses.append(f"os_hidden = {sql.arg(int(hidden))}")
    for key, op in (("size_min", ">="), ("size_max", "<=")):
        if key in query and query[key].lstrip("-").isdigit() and len(query[key]) < 20:
            sql.clauses.append(f"size {op} {sql.arg(int(query[key]))}")


def _after(sql: _Sql, order: list[tuple[str, bool]], last: records.Image) -> None:
    """Rows after `last` in `order` (NULLs last whatever the direction, as Glance lists them)."""
    alternatives, equal = [], []
    for key, descending in order:
        column, value = sql.column(key), getattr(last, key)
        if value is None:  # only NULLs follow a NULL: the tie goes on to the next key
            equal.append(f"{key} IS NULL")
            continue
        placeholder = sql.arg(value)
        beyond = f"({column} {'<' if descending else '>'} {placeholder} OR {key} IS NULL)"
        alternatives.append(" AND ".join([*equal, beyond]))
        equal.append(f"{column} = {placeholder}")
    sql.clauses.append("(" + " OR ".join(f"({a})" for a in alternatives) + ")"
                       if alternatives else "1 = 0")


def _order_by(sql: _Sql, order: list[tuple[str, bool]]) -> str:
    return ", ".join(f"{sql.column(key)} {'DESC' if descending else 'ASC'} NULLS LAST"
                     for key, descending in order)


async def page(db: Executor, *, project_id: str | None, is_admin: bool, query: MultiMapping[str],
               visibility: str | None, order: list[tuple[str, bool]], limit: int,
               marker: records.Image | None,
               keep: Callable[[records.Image], bool]) -> tuple[list[records.Image], bool]:
    """(up to `limit` images after `marker` that `keep` accepts, whether more follow)."""
    found: list[records.Image] = []
    last = marker
    batch = limit + 1
    while True:
        sql = _Sql(db.dialect)
        _visible(sql, project_id, is_admin)
        _filters(sql, query, visibility, project_id)
        if last is not None:
            _after(sql, order, last)
        where = " AND ".join(sql.clauses) or "1 = 1"
        rows = await db.fetch(f"SELECT * FROM images WHERE {where} ORDER BY "
                              f"{_order_by(sql, order)} LIMIT {batch}", *sql.args)
        for row in rows:
            image = records.from_row(row)
            if keep(image):
                found.append(image)
                if len(found) > limit:
                    return found[:limit], True
        if len(rows) < batch:
            return found, False
        last = records.from_row(rows[-1])
