"""The object store's rows: buckets, objects, multipart uploads and parts (migration 0004).

A row is what makes an object visible: it is written only after the object's file is complete
and renamed into place, so a crash at any point leaves nothing half-visible.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

from cloudd.db import Database, DuplicateError, Executor, IntegrityError, Row
from cloudd.storage_quota import Usage

# After a common prefix, listing resumes past every key that starts with it: no key that
# starts with the prefix sorts after prefix + the highest code point (in UTF-8 byte order).
HIGHEST = "\U0010ffff"
BATCH = 1000


def _key(db: Executor) -> str:
    # S3 lists keys in UTF-8 byte order: SQLite's BINARY collation is that; PostgreSQL's
    # default collation is the locale's, so it is overridden with "C" (byte order).
    return 'object_key COLLATE "C"' if getattr(db, "dialect", "sqlite") == "postgresql" else "object_key"


# ----- buckets ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Bucket:
    name: str
    project_id: str
    public_read: bool
    created_at: float

    @classmethod
    def from_row(cls, row: Row) -> Bucket:
        return cls(str(row["name"]), str(row["project_id"]), bool(row["public_read"]),
                   float(row["created_at"]))


async def get_bucket(db: Executor, name: str) -> Bucket | None:
    row = await db.fetchrow("SELECT * FROM buckets WHERE name = $1", name)
    return None if row is None else Bucket.from_row(row)


async def bucket_names(db: Executor) -> list[str]:
    """Every bucket's name (the garbage sweep visits each)."""
    return [str(row["name"]) for row in await db.fetch("SELECT name FROM buckets")]


async def create_bucket(db: Executor, name: str, project_id: str, public_read: bool) -> bool:
    """False when the name is taken (by anyone)."""
    try:
        await db.execute(
            "INSERT INTO buckets (name, project_id, public_read, created_at) VALUES ($1, $2, $3, $4)",
            name, project_id, int(public_read), time.time())
    except (DuplicateError, IntegrityError):
        return False
    return True


async def list_buckets(db: Executor, project_id: str) -> list[Bucket]:
    rows = await db.fetch("SELECT * FROM buckets WHERE project_id = $1 ORDER BY name", project_id)
    return [Bucket.from_row(row) for row in rows]


async def delete_bucket_if_empty(db: Database, name: str) -> bool:
    """Delete the bucket unless it holds objects or unfinished uploads; False if it does."""
    async with db.transaction() as tx:
        if await tx.fetchval("SELECT 1 FROM bucket_objects WHERE bucket = $1 LIMIT 1", name):
            return False
        if await tx.fetchval("SELECT 1 FROM multipart_uploads WHERE bucket = $1 LIMIT 1", name):
            return False
        await tx.execute("DELETE FROM buckets WHERE name = $1", name)
    return True


async def set_bucket_public(db: Executor, name: str, public_read: bool) -> None:
    await db.execute("UPDATE buckets SET public_read = $1 WHERE name = $2", int(public_read), name)


# ----- objects ------------------------------------------------------------------------------
@dataclass
class ObjectInfo:
    bucket: str
    key: str
    blob: str
    size: int
    etag: str
    content_type: str
    metadata: dict[str, str]
    public_read: bool
    last_modified: float

    @classmethod
    def from_row(cls, row: Row) -> ObjectInfo:
        return cls(row["bucket"], row["object_key"], row["blob"], int(row["size"]), row["etag"],
                   row["content_type"], json.loads(row["metadata"]), bool(row["public_read"]),
                   float(row["last_modified"]))


async def get_object(db: Executor, bucket: str, key: str) -> ObjectInfo | None:
    row = await db.fetchrow("SELECT * FROM bucket_objects WHERE bucket = $1 AND object_key = $2",
                            bucket, key)
    return ObjectInfo.from_row(row) if row else None


async def put_object(db: Database, info: ObjectInfo) -> str | None:
    """Make `info` the visible version of its key; return the blob it replaced (to delete)."""
    async with db.transaction() as tx:
        old: str | None = await tx.fetchval(
            "SELECT blob FROM bucket_objects WHERE bucket = $1 AND object_key = $2",
            info.bucket, info.key)
        await tx.execute(
            "INSERT INTO bucket_objects (bucket, object_key, blob, size, etag, content_type,"
            " metadata, public_read, last_modified) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
            " ON CONFLICT (bucket, object_key) DO UPDATE SET blob = excluded.blob,"
            " size = excluded.size, etag = excluded.etag, content_type = excluded.content_type,"
            " metadata = excluded.metadata, public_read = excluded.public_read,"
            " last_modified = excluded.last_modified",
            info.bucket, info.key, info.blob, info.size, info.etag, info.content_type,
            json.dumps(info.metadata), int(info.public_read), info.last_modified)
    return old if old != info.blob else None


async def delete_object(db: Database, bucket: str, key: str) -> str | None:
    """Remove the key; return its blob (to delete), None if there was no such key."""
    async with db.transaction() as tx:
        blob: str | None = await tx.fetchval(
            "SELECT blob FROM bucket_objects WHERE bucket = $1 AND object_key = $2", bucket, key)
        if blob is not None:
            await tx.execute("DELETE FROM bucket_objects WHERE bucket = $1 AND object_key = $2",
                             bucket, key)
    return blob


async def stored_totals(db: Executor) -> tuple[int, int]:
    """(count, bytes) of every object in the store (the metrics' gauges)."""
    row = await db.fetchrow(
        "SELECT COUNT(*) AS n, COALESCE(SUM(size), 0) AS total FROM bucket_objects")
    assert row is not None
    return int(row["n"]), int(row["total"])


async def usage(db: Executor, project_id: str) -> Usage:
    """Bytes and count of the project's objects, the storage quota's object usage: the parts of
    unfinished multipart uploads count in the bytes (they take the disk as much)."""
    row = await db.fetchrow(
        "SELECT COUNT(*) AS n, COALESCE(SUM(o.size), 0) AS bytes FROM bucket_objects o"
        " JOIN buckets b ON b.name = o.bucket WHERE b.project_id = $1", project_id)
    parts = await db.fetchval(
        "SELECT COALESCE(SUM(p.size), 0) FROM multipart_parts p JOIN multipart_uploads u"
        " ON u.upload_id = p.upload_id WHERE u.project_id = $1", project_id)
    assert row is not None
    return Usage(int(row["bytes"]) + int(parts or 0), int(row["n"]))


async def set_object_public(db: Executor, bucket: str, key: str, public_read: bool) -> None:
    await db.execute("UPDATE bucket_objects SET public_read = $1 WHERE bucket = $2 AND object_key = $3",
                     int(public_read), bucket, key)


@dataclass
class Listing:
    contents: list[ObjectInfo]
    common_prefixes: list[str]
    truncated: bool
    next_marker: str | None  # the last key or common prefix returned, when truncated


def _common_prefix(key: str, prefix: str, delimiter: str) -> str | None:
    if not delimiter:
        return None
    index = key.find(delimiter, len(prefix))
    return key[: index + len(delimiter)] if index >= 0 else None


async def list_objects(db: Executor, bucket: str, prefix: str, delimiter: str, after: str,
                       max_keys: int) -> Listing:
    """Keys after `after` that start with `prefix`, rolled up at `delimiter` (S3 semantics)."""
    listing = Listing([], [], False, None)
    cursor = after
    if after and _common_prefix(after, prefix, delimiter) == after:
        cursor = after + HIGHEST  # `after` was a common prefix: skip what it rolled up
    if prefix > cursor:
        cursor = prefix
        include_cursor = True  # the prefix itself may be a key
    else:
        include_cursor = False
    key_sql = _key(db)
    while True:
        rows = await db.fetch(
            f"SELECT * FROM bucket_objects WHERE bucket = $1 AND {key_sql} {'>=' if include_cursor else '>'}"
            f" $2 AND substr(object_key, 1, $3) = $4 ORDER BY {key_sql} LIMIT $5",
            bucket, cursor, len(prefix), prefix, BATCH)
        include_cursor = False
        if not rows:
            return listing
        for row in rows:
            key = row["object_key"]
            common = _common_prefix(key, prefix, delimiter)
            if len(listing.contents) + len(listing.common_prefixes) >= max_keys:
                listing.truncated = True
                return listing
            if common is not None:
                listing.common_prefixes.append(common)
                listing.next_marker = common
                cursor = common + HIGHEST
                break  # re-query past everything the common prefix rolled up
            listing.contents.append(ObjectInfo.from_row(row))
            listing.next_marker = key
            cursor = key
        else:
            if len(rows) < BATCH:
                return listing


# ----- multipart ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Upload:
    """An unfinished multipart upload: what its object will be once completed."""

    upload_id: str
    bucket: str
    object_key: str
    project_id: str
    content_type: str
    metadata: dict[str, str]
    public_read: bool
    created_at: float

    @classmethod
    def from_row(cls, row: Row) -> Upload:
        return cls(str(row["upload_id"]), str(row["bucket"]), str(row["object_key"]),
                   str(row["project_id"]), str(row["content_type"]), json.loads(row["metadata"]),
                   bool(row["public_read"]), float(row["created_at"]))


@dataclass(frozen=True)
class Part:
    upload_id: str
    part_number: int
    blob: str
    size: int
    etag: str
    last_modified: float

    @classmethod
    def from_row(cls, row: Row) -> Part:
        return cls(str(row["upload_id"]), int(row["part_number"]), str(row["blob"]),
                   int(row["size"]), str(row["etag"]), float(row["last_modified"]))


async def create_upload(db: Executor, upload_id: str, bucket: str, key: str, project_id: str,
                        content_type: str, metadata: dict[str, str], public_read: bool) -> None:
    await db.execute(
        "INSERT INTO multipart_uploads (upload_id, bucket, object_key, project_id, content_type,"
        " metadata, public_read, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        upload_id, bucket, key, project_id, content_type, json.dumps(metadata), int(public_read),
        time.time())


async def get_upload(db: Executor, upload_id: str, bucket: str, key: str) -> Upload | None:
    row = await db.fetchrow(
        "SELECT * FROM multipart_uploads WHERE upload_id = $1 AND bucket = $2 AND object_key = $3",
        upload_id, bucket, key)
    return None if row is None else Upload.from_row(row)


async def list_uploads(db: Executor, bucket: str) -> list[Upload]:
    rows = await db.fetch(
        f"SELECT * FROM multipart_uploads WHERE bucket = $1 ORDER BY {_key(db)}, created_at", bucket)
    return [Upload.from_row(row) for row in rows]


async def uploads_begun_before(db: Executor, cutoff: float) -> list[Upload]:
    """The uploads begun before `cutoff` (the expiry of abandoned uploads)."""
    rows = await db.fetch("SELECT * FROM multipart_uploads WHERE created_at < $1", cutoff)
    return [Upload.from_row(row) for row in rows]


async def put_part(db: Database, upload_id: str, number: int, blob: str, size: int,
                   etag: str) -> str | None:
    """Record a part (replacing an earlier upload of the same number); return the old blob.
    None of it happens if the upload was completed or aborted meanwhile (then returns `blob`)."""
    async with db.transaction() as tx:
        if not await tx.fetchval("SELECT 1 FROM multipart_uploads WHERE upload_id = $1", upload_id):
            return blob
        old: str | None = await tx.fetchval(
            "SELECT blob FROM multipart_parts WHERE upload_id = $1 AND part_number = $2",
            upload_id, number)
        await tx.execute(
            "INSERT INTO multipart_parts (upload_id, part_number, blob, size, etag, last_modified)"
            " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (upload_id, part_number) DO UPDATE SET"
            " blob = excluded.blob, size = excluded.size, etag = excluded.etag,"
            " last_modified = excluded.last_modified",
            upload_id, number, blob, size, etag, time.time())
    return old


async def list_parts(db: Executor, upload_id: str) -> list[Part]:
    rows = await db.fetch(
        "SELECT * FROM multipart_parts WHERE upload_id = $1 ORDER BY part_number", upload_id)
    return [Part.from_row(row) for row in rows]


async def finish_upload(db: Database, upload_id: str) -> list[str]:
    """Forget the upload and its parts; return the part blobs (to delete)."""
    async with db.transaction() as tx:
        rows = await tx.fetch("SELECT blob FROM multipart_parts WHERE upload_id = $1", upload_id)
        await tx.execute("DELETE FROM multipart_parts WHERE upload_id = $1", upload_id)
        await tx.execute("DELETE FROM multipart_uploads WHERE upload_id = $1", upload_id)
    return [row["blob"] for row in rows]


async def referenced_blobs(db: Executor, bucket: str) -> set[str]:
    """Every blob a row points at (start-up removes the other files: crash leftovers)."""
    rows = await db.fetch("SELECT blob FROM bucket_objects WHERE bucket = $1", bucket)
    parts = await db.fetch(
        "SELECT p.blob FROM multipart_parts p JOIN multipart_uploads u"
        " ON u.upload_id = p.upload_id WHERE u.bucket = $1", bucket)
    return {row["blob"] for row in rows} | {row["blob"] for row in parts}
