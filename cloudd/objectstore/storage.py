"""The object file store shared by the Image API and the S3 API: buckets of immutable objects.

Usage::

    store = ObjectStore(Path("/var/lib/cloudd/glance"))
    info = await store.put("images", key, chunks, max_size=10 * 2**30)   # -> StoredObject
    reader = await store.open_read("images", key, offset=0, length=None)  # raises before streaming
    async for chunk in reader: ...                                      # (async with reader: ...)
    await store.stat(bucket, key)   -> StoredObject           (ObjectNotFound)
    await store.exists(bucket, key) -> bool
    await store.delete(bucket, key) -> bool                   (False when it was not there)
    await store.list(bucket, prefix="", start_after="", limit=None) -> list[StoredObject], by key
    await store.create_bucket(b) -> bool / delete_bucket(b) (BucketNotEmpty) / bucket_exists(b)
    await store.list_buckets() -> list[str]

Layout: ``<root>/<bucket>/<sha256(key)>.json`` holds the object's metadata (its key, size, md5,
sha256, sha512, content type, user metadata) and names its data file
``<sha256(key)>.<random>.data``. Keys never become paths, so no key can escape its bucket.

Atomicity: ``put`` streams into a temporary file in the bucket directory, hashing as it goes,
fsyncs it, renames it to a fresh data name, writes the metadata the same way and renames it over
the old one: that last rename is the moment the new object becomes visible. A crash or an error
before it leaves the previous object (or none) visible; the temp or data file left behind by a
crash is never referenced and ``collect_garbage`` removes it. Readers that opened the old data
file keep reading it after an overwrite (POSIX unlink semantics).

All file I/O runs in worker threads (asyncio.to_thread); the event loop never waits on the disk.
"""

from __future__ import annotations

import asyncio
import errno
import hashlib
import json
import os
import re
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO

from cloudd import errors

CHUNK_SIZE = 1024 * 1024
MAX_KEY_BYTES = 1024
# Directory names: no separators, no leading dot (so never "." or ".."), bounded length.
_BUCKET_NAME = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9._-]{0,254}$")
_TEMP_PREFIX = ".tmp-"


class StorageError(errors.CloudError):
    """Any failure of the store (a 500); the message says which object and why. The S3
    renderer answers every one as S3 always did (InternalError, EntityTooLarge): a handler
    that means NoSuchKey or the like translates."""


class InvalidName(errors.BadRequest, StorageError):
    pass


class BucketNotFound(errors.NotFound, StorageError):
    pass


class BucketNotEmpty(errors.Conflict, StorageError):
    pass


class ObjectNotFound(errors.NotFound, StorageError):
    pass


class ObjectTooLarge(errors.OverLimit, StorageError):
    pass


class StorageFull(StorageError):
    """The disk (or the quota) is full: ENOSPC / EDQUOT. A 500 (S3's InternalError; Glance
    answers its 413): the server failed, the request was not wrong."""


class InvalidRange(errors.BadRequest, StorageError):
    pass


@dataclass(frozen=True)
class StoredObject:
    bucket: str
    key: str
    size: int
    md5: str  # hex digests
    sha256: str
    sha512: str
    modified: float  # epoch seconds
    content_type: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    data_file: str = ""  # the data file's name in the bucket directory (internal)


def _key_id(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def validate_bucket(bucket: str) -> str:
    if not isinstance(bucket, str) or not _BUCKET_NAME.match(bucket):
        raise InvalidName(f"invalid bucket name {bucket!r}")
    return bucket


def validate_key(key: str) -> str:
    if not isinstance(key, str) or not key or "\x00" in key:
        raise InvalidName(f"invalid object key {key!r}")
    if len(key.encode("utf-8", "surrogatepass")) > MAX_KEY_BYTES:
        raise InvalidName(f"object key longer than {MAX_KEY_BYTES} bytes")
    return key


class ObjectReader:
    """The chunks of one open object file; closes the file at the end, on error or on aclose()."""

    def __init__(self, handle: BinaryIO, remaining: int, chunk_size: int) -> None:
        self._handle: BinaryIO | None = handle
        self.remaining = remaining
        self._chunk_size = chunk_size

    def __aiter__(self) -> ObjectReader:
        return self

    async def __anext__(self) -> bytes:
        if self._handle is None or self.remaining <= 0:
            await self.aclose()
            raise StopAsyncIteration
        try:
            chunk = await asyncio.to_thread(self._handle.read, min(self._chunk_size, self.remaining))
        except BaseException:
            await self.aclose()
            raise
        if not chunk:  # truncated underneath us: never spin
            await self.aclose()
            raise StopAsyncIteration
        self.remaining -= len(chunk)
        return chunk

    async def aclose(self) -> None:
        handle, self._handle = self._handle, None
        if handle is not None:
            handle.close()  # a close of a read-only file does not block on the disk

    async def __aenter__(self) -> ObjectReader:
        return self

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.aclose()


class ObjectStore:
    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)

    # ----- buckets ------------------------------------------------------------------------------
    def _bucket_dir(self, bucket: str) -> Path:
        return self.root / validate_bucket(bucket)

    async def create_bucket(self, bucket: str) -> bool:
        """Create the bucket; False if it already existed."""
        path = self._bucket_dir(bucket)

        def create() -> bool:
            path.parent.mkdir(parents=True, exist_ok=True)
            try:
                path.mkdir()
            except FileExistsError:
                return False
            return True

        return await asyncio.to_thread(create)

    async def bucket_exists(self, bucket: str) -> bool:
        return await asyncio.to_thread(self._bucket_dir(bucket).is_dir)

    async def delete_bucket(self, bucket: str) -> None:
        path = self._bucket_dir(bucket)

        def remove() -> None:
            if not path.is_dir():
                raise BucketNotFound(f"bucket {bucket} does not exist")
            if any(p.suffix == ".json" for p in path.iterdir()):
                raise BucketNotEmpty(f"bucket {bucket} is not empty")
            for leftover in path.iterdir():  # orphaned temp/data files of crashed writes
                leftover.unlink(missing_ok=True)
            path.rmdir()

        await asyncio.to_thread(remove)

    async def list_buckets(self) -> list[str]:
        def names() -> list[str]:
            if not self.root.is_dir():
                return []
            return sorted(p.name for p in self.root.iterdir()
                          if p.is_dir() and _BUCKET_NAME.match(p.name))

        return await asyncio.to_thread(names)

    # ----- objects ------------------------------------------------------------------------------
    async def put(self, bucket: str, key: str, chunks: AsyncIterator[bytes],
                  max_size: int | None = None, *, content_type: str | None = None,
                  metadata: dict[str, str] | None = None, create_bucket: bool = True) -> StoredObject:
        """Store the object from `chunks`; visible only once complete. ObjectTooLarge past
        `max_size` bytes, StorageFull when the disk is full; nothing is left behind on error."""
        directory = self._bucket_dir(bucket)
        validate_key(key)
        if create_bucket:
            await self.create_bucket(bucket)
        elif not await self.bucket_exists(bucket):
            raise BucketNotFound(f"bucket {bucket} does not exist")
        temp = directory / f"{_TEMP_PREFIX}{secrets.token_hex(8)}"
        hashes = (hashlib.md5(usedforsecurity=False), hashlib.sha256(), hashlib.sha512())
        size = 0
        handle: BinaryIO | None = None

        async def disk(func: Any, *args: Any) -> Any:
            # Disk errors become StorageErrors; errors of `chunks` (a client that hung up)
            # pass through unchanged: they are not the store's failures.
            try:
                return await asyncio.to_thread(func, *args)
            except OSError as exc:
                raise _storage_error(exc, bucket, key) from exc

        try:
            handle = await disk(open, temp, "xb")
            async for chunk in chunks:
                size += len(chunk)
                if max_size is not None and size > max_size:
                    raise ObjectTooLarge(f"object {bucket}/{key} is larger than {max_size} bytes")
                await disk(_write_and_hash, handle, chunk, hashes)
            done, handle = handle, None
            await disk(_flush_and_close, done)
            info = StoredObject(bucket=bucket, key=key, size=size, md5=hashes[0].hexdigest(),
                                sha256=hashes[1].hexdigest(), sha512=hashes[2].hexdigest(),
                                modified=time.time(), content_type=content_type,
                                metadata=dict(metadata or {}),
                                data_file=f"{_key_id(key)}.{secrets.token_hex(8)}.data")
            await disk(self._commit, directory, temp, info)
            return info
        finally:
            # Also on cancellation (a client that hung up): plain calls, since awaiting again
            # in a cancelled task is not reliable; closing and unlinking one file is quick.
            if handle is not None:
                handle.close()
            temp.unlink(missing_ok=True)

    def _commit(self, directory: Path, temp: Path, info: StoredObject) -> None:
        """Runs in a thread: data rename, then the metadata rename that publishes the object."""
        data_path = directory / info.data_file
        meta_path = directory / f"{_key_id(info.key)}.json"
        old = _read_meta(meta_path)
        os.rename(temp, data_path)
        meta_temp = directory / f"{_TEMP_PREFIX}{secrets.token_hex(8)}"
        try:
            with open(meta_temp, "x", encoding="utf-8") as meta:
                json.dump(asdict(info), meta)
                meta.flush()
                os.fsync(meta.fileno())
            os.rename(meta_temp, meta_path)
        except BaseException:
            meta_temp.unlink(missing_ok=True)
            data_path.unlink(missing_ok=True)
            raise
        _fsync_dir(directory)
        if old is not None and old.data_file != info.data_file:
            (directory / old.data_file).unlink(missing_ok=True)

    def data_path(self, info: StoredObject) -> Path:
        """The file holding a stored object's bytes (for readers that need a path)."""
        return self._bucket_dir(info.bucket) / info.data_file

    async def stat(self, bucket: str, key: str) -> StoredObject:
        meta_path = self._bucket_dir(bucket) / f"{_key_id(validate_key(key))}.json"
        info = await asyncio.to_thread(_read_meta, meta_path)
        if info is None:
            raise ObjectNotFound(f"object {bucket}/{key} does not exist")
        return info

    async def exists(self, bucket: str, key: str) -> bool:
        try:
            await self.stat(bucket, key)
        except ObjectNotFound:
            return False
        return True

    async def open_read(self, bucket: str, key: str, offset: int = 0, length: int | None = None,
                        chunk_size: int = CHUNK_SIZE) -> ObjectReader:
        """An async iterator over the object's bytes [offset, offset+length); ObjectNotFound or
        InvalidRange are raised here, before the caller starts a response."""
        info = await self.stat(bucket, key)
        if offset < 0 or offset > info.size or (length is not None and length < 0):
            raise InvalidRange(f"range {offset}+{length} outside {bucket}/{key} ({info.size} bytes)")
        remaining = info.size - offset if length is None else min(length, info.size - offset)
        path = self._bucket_dir(bucket) / info.data_file

        def open_at() -> BinaryIO:
            handle = open(path, "rb")
            handle.seek(offset)
            return handle

        try:
            handle = await asyncio.to_thread(open_at)
        except FileNotFoundError:  # replaced or deleted between stat and open
            raise ObjectNotFound(f"object {bucket}/{key} does not exist") from None
        return ObjectReader(handle, remaining, chunk_size)

    async def delete(self, bucket: str, key: str) -> bool:
        directory = self._bucket_dir(bucket)
        meta_path = directory / f"{_key_id(validate_key(key))}.json"

        def remove() -> bool:
            info = _read_meta(meta_path)
            if info is None:
                return False
            meta_path.unlink(missing_ok=True)  # the object is gone from this moment
            (directory / info.data_file).unlink(missing_ok=True)
            return True

        return await asyncio.to_thread(remove)

    async def list(self, bucket: str, prefix: str = "", start_after: str = "",
                   limit: int | None = None) -> list[StoredObject]:
        """Objects whose key starts with `prefix` and sorts after `start_after`, by key."""
        directory = self._bucket_dir(bucket)

        def scan() -> list[StoredObject]:
            if not directory.is_dir():
                raise BucketNotFound(f"bucket {bucket} does not exist")
            found = []
            for meta_path in directory.glob("*.json"):
                info = _read_meta(meta_path)
                if info is not None and info.key.startswith(prefix) and info.key > start_after:
                    found.append(info)
            found.sort(key=lambda item: item.key)
            return found if limit is None else found[:limit]

        return await asyncio.to_thread(scan)

    async def collect_garbage(self, bucket: str, older_than: float = 3600.0) -> int:
        """Remove temp and data files no object refers to (left by crashes); count removed."""
        directory = self._bucket_dir(bucket)

        def sweep() -> int:
            if not directory.is_dir():
                return 0
            referenced = {info.data_file for meta in directory.glob("*.json")
                          if (info := _read_meta(meta)) is not None}
            removed = 0
            cutoff = time.time() - older_than
            for path in directory.iterdir():
                orphan = path.name.startswith(_TEMP_PREFIX) or (
                    path.suffix == ".data" and path.name not in referenced)
                if orphan and path.stat().st_mtime < cutoff:
                    path.unlink(missing_ok=True)
                    removed += 1
            return removed

        return await asyncio.to_thread(sweep)


def _write_and_hash(handle: BinaryIO, chunk: bytes, hashes: tuple[Any, ...]) -> None:
    handle.write(chunk)
    for digest in hashes:
        digest.update(chunk)


def _flush_and_close(handle: BinaryIO) -> None:
    try:
        handle.flush()
        os.fsync(handle.fileno())
    finally:
        handle.close()


def _fsync_dir(directory: Path) -> None:
    """Make the renames durable (the directory entry is what a crash could lose)."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _read_meta(meta_path: Path) -> StoredObject | None:
    try:
        data = json.loads(meta_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise StorageError(f"unreadable object metadata {meta_path.name}: {exc}") from exc
    return StoredObject(**data)


def _storage_error(exc: OSError, bucket: str, key: str) -> StorageError:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return StorageFull(f"cannot store {bucket}/{key}: no space left on the storage device")
    return StorageError(f"cannot store {bucket}/{key}: {exc.strerror or exc}")
