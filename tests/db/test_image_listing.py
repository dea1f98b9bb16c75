"""GET /v2/images pages in SQL on both backends: the order (code points, NULLs last either
way), keyset paging after a marker, visibility, and batches when the exact filter drops rows."""

from __future__ import annotations

import time
from typing import Any

from multidict import MultiDict

from cloudd.db import Database
from cloudd.image import listing, records


async def walk(db: Database, order: list[tuple[str, bool]], limit: int, **kwargs: Any) \
        -> list[str]:
    """Every page, following the marker as a client follows `next`: the ids in order."""
    seen: list[str] = []
    marker = None
    while True:
        images, more = await listing.page(
            db, project_id=kwargs.get("project_id", "p1"), is_admin=False,
            query=MultiDict(kwargs.get("query", {})), visibility=None, order=order, limit=limit,
            marker=marker, keep=kwargs.get("keep", lambda image: True))
        seen += [image.id for image in images]
        if not more:
            return seen
        marker = images[-1]


async def test_pages_in_sql_match_a_python_sort(db: Database) -> None:
    now = time.time()
    rows = [("i1", "beta", 10, "private", "p1"), ("i2", "Alpha", None, "private", "p1"),
            ("i3", None, 5, "public", "p2"), ("i4", "alpha", 10, "public", "p2"),
            ("i5", "beta", None, "private", "p2"), ("i6", "zed", 7, "shared", "p2"),
            ("i7", None, None, "community", "p2"), ("i8", "gamma", 1, "shared", "p2")]
    for n, (image_id, name, size, visibility, owner) in enumerate(rows):
        await db.execute("INSERT INTO images (id, name, owner, status, visibility, size,"
                         " created_at, updated_at) VALUES ($1, $2, $3, 'active', $4, $5, $6, $6)",
                         image_id, name, owner, visibility, size, now + n)
    await db.execute("INSERT INTO image_members (image_id, member, created_at, updated_at)"
                     " VALUES ('i8', 'p1', $1, $1)", now)
    # p1 sees its own, the public ones and i8 (shared with it); not i5, i6 or community i7.
    visible = {"i1", "i2", "i3", "i4", "i8"}
    by_id = {r[0]: r for r in rows}

    def python_order(key: int, descending: bool) -> list[str]:
        # Ties are broken by id, descending (the listing's final key); sorts are stable.
        by_id_desc = sorted((i for i in visible if by_id[i][key] is not None), reverse=True)
        def column(image_id: str) -> Any:  # one column's values are all str or all int
            return by_id[image_id][key]

        present = sorted(by_id_desc, key=column, reverse=descending)
        return present + sorted((i for i in visible if by_id[i][key] is None), reverse=True)

    for limit in (1, 2, 3, 10):
        assert await walk(db, [("name", False), ("id", True)], limit) == python_order(1, False)
        assert await walk(db, [("name", True), ("id", True)], limit) == python_order(1, True)
        assert await walk(db, [("size", False), ("id", True)], limit) == python_order(2, False)
    assert python_order(1, False)[:3] == ["i2", "i4", "i1"]  # "Alpha" < "alpha" < "beta"
    # The exact filter drops rows after SQL: the page still fills from later batches.
    kept = await walk(db, [("name", False), ("id", True)], 1,
                      keep=lambda image: image.id in ("i1", "i8"))
    assert kept == ["i1", "i8"]
    # Column filters in SQL.
    assert await walk(db, [("id", True)], 5, query={"name": "in:beta,zed"}) == ["i1"]
    assert await walk(db, [("id", True)], 5, project_id="p2") == ["i8", "i7", "i6", "i5", "i4",
                                                                    "i3"]
    assert records.from_row(dict(await db.fetchrow("SELECT * FROM images WHERE id = 'i1'") or {}))
