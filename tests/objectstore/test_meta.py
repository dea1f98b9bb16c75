"""Object rows on SQLite and PostgreSQL: S3's byte order, prefixes, delimiters and paging agree."""

from __future__ import annotations

import time

from cloudd.db import Database
from cloudd.objectstore import meta

KEYS = ["A", "a", "a/1", "a/2", "a_b", "b/x/1", "b/y", "z z", "é/ü", "\u4e2d"]  # UTF-8 byte order


async def fill(db: Database) -> None:
    assert await meta.create_bucket(db, "bkt", "proj", public_read=False)
    assert not await meta.create_bucket(db, "bkt", "other", public_read=False)
    for key in reversed(KEYS):
        await meta.put_object(db, meta.ObjectInfo("bkt", key, f"blob-{key}", 1, "e", "t", {}, False,
                                                  time.time()))


async def test_listing_order_prefix_delimiter_and_paging(db: Database) -> None:
    await fill(db)
    everything = await meta.list_objects(db, "bkt", "", "", "", 1000)
    assert [o.key for o in everything.contents] == KEYS and not everything.truncated
    rolled = await meta.list_objects(db, "bkt", "", "/", "", 1000)
    assert [o.key for o in rolled.contents] == ["A", "a", "a_b", "z z", "\u4e2d"]
    assert rolled.common_prefixes == ["a/", "b/", "é/"]
    under_b = await meta.list_objects(db, "bkt", "b/", "/", "", 1000)
    assert ([o.key for o in under_b.contents], under_b.common_prefixes) == (["b/y"], ["b/x/"])

    seen: list[str] = []
    after = ""
    while True:  # two entries a page; a common prefix as the marker skips what it rolled up
        page = await meta.list_objects(db, "bkt", "", "/", after, 2)
        seen += [o.key for o in page.contents] + page.common_prefixes
        if not page.truncated:
            break
        assert page.next_marker is not None
        after = page.next_marker
    assert sorted(seen) == sorted(["A", "a", "a/", "a_b", "b/", "z z", "é/", "\u4e2d"])
    assert len(seen) == len(set(seen))


async def test_overwrite_returns_the_replaced_blob_and_delete_needs_empty(db: Database) -> None:
    await fill(db)
    replaced = await meta.put_object(db, meta.ObjectInfo("bkt", "a", "new-blob", 2, "f", "t", {}, True,
                                                         time.time()))
    assert replaced == "blob-a"
    info = await meta.get_object(db, "bkt", "a")
    assert info is not None and (info.blob, info.size, info.public_read) == ("new-blob", 2, True)
    assert not await meta.delete_bucket_if_empty(db, "bkt")
    for key in KEYS:
        assert await meta.delete_object(db, "bkt", key) is not None
    assert await meta.delete_object(db, "bkt", "a") is None
    assert await meta.delete_bucket_if_empty(db, "bkt")
    assert await meta.get_bucket(db, "bkt") is None
