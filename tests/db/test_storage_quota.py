"""Storage quota limits and counted usage on both backends (SUM over BIGINT is numeric on
PostgreSQL; the counts must come back as the same integers on SQLite)."""

from __future__ import annotations

import time

from cloudd import storage_quota
from cloudd.compute import quota
from cloudd.db import Database
from cloudd.image import records
from cloudd.objectstore import meta

MIB = 1024**2


async def test_usage_and_room_count_objects_parts_and_images(db: Database) -> None:
    now = time.time()
    for bucket, project in (("mine", "p1"), ("theirs", "p2")):
        await db.execute("INSERT INTO buckets (name, project_id, created_at) VALUES ($1, $2, $3)",
                         bucket, project, now)
    for key, size in (("a", 3 * MIB), ("b", 1)):
        await db.execute("INSERT INTO bucket_objects (bucket, object_key, blob, size, etag,"
                         " content_type, last_modified) VALUES ('mine', $1, $1, $2, 'e', 't', $3)",
                         key, size, now)
    await db.execute("INSERT INTO bucket_objects (bucket, object_key, blob, size, etag,"
                     " content_type, last_modified) VALUES ('theirs', 'x', 'x', 99, 'e', 't', $1)",
                     now)
    await db.execute("INSERT INTO multipart_uploads (upload_id, bucket, object_key, project_id,"
                     " content_type, created_at) VALUES ('u1', 'mine', 'mp', 'p1', 't', $1)", now)
    await db.execute("INSERT INTO multipart_parts (upload_id, part_number, blob, size, etag,"
                     " last_modified) VALUES ('u1', 1, 'p', $1, 'e', $2)", MIB, now)
    image_sizes: tuple[tuple[str, int | None], ...] = (("i1", 5 * MIB), ("i2", None))
    for image_id, image_size in image_sizes:
        await db.execute("INSERT INTO images (id, owner, status, visibility, size, created_at,"
                         " updated_at) VALUES ($1, 'p1', 'active', 'private', $2, $3, $3)",
                         image_id, image_size, now)

    assert storage_quota.storage_usage(await records.usage(db, "p1"),
                                       await meta.usage(db, "p1")) == {
        "image_size_total": 5, "image_count_total": 2,
        "object_size_total": 5, "object_count_total": 2}  # 4 MiB + 1 byte, rounded up
    await quota.set_limits(db, "p1", {"object_size_total": 5, "object_count_total": 2}, now)
    objects = await meta.usage(db, "p1")
    room = await storage_quota.room(db, "p1", "object", objects)
    assert room.bytes_left == MIB - 1 and not room.count_fits
    replacing = await storage_quota.room(db, "p1", "object", objects, freed_bytes=3 * MIB,
                                         new_item=False)
    assert replacing.bytes_left == 4 * MIB - 1 and replacing.count_fits
    images = await records.usage(db, "p2")
    assert (await storage_quota.room(db, "p2", "image", images)).bytes_left == 100 * 1024 * MIB
    await quota.set_limits(db, "p2", {"image_size_total": -1}, now)
    assert (await storage_quota.room(db, "p2", "image", images)).bytes_left is None
