"""The object file store on a real directory: round trips, hashes, atomicity, names, ranges."""

from __future__ import annotations

import hashlib
import os
import subprocess
from collections.abc import AsyncIterator, Iterable, Iterator
from pathlib import Path

import pytest
from harness import requires

from cloudd.objectstore.storage import (
    BucketNotEmpty,
    InvalidName,
    InvalidRange,
    ObjectNotFound,
    ObjectStore,
    ObjectTooLarge,
    StorageFull,
)


async def chunks_of(parts: Iterable[bytes], fail_after: int | None = None) -> AsyncIterator[bytes]:
    for index, part in enumerate(parts):
        if fail_after is not None and index == fail_after:
            raise ConnectionResetError("client went away")
        yield part


def visible_files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


async def test_put_read_stat_list_delete(tmp_path: Path) -> None:
    store = ObjectStore(tmp_path)
    parts = [os.urandom(1000), os.urandom(70000), b"tail"]
    data = b"".join(parts)
    info = await store.put("b1", "dir/one.img", chunks_of(parts), content_type="image/x",
                           metadata={"owner": "p1"})
    assert (info.size, info.md5) == (len(data), hashlib.md5(data).hexdigest())
    assert info.sha256 == hashlib.sha256(data).hexdigest()
    assert info.sha512 == hashlib.sha512(data).hexdigest()
    assert await store.stat("b1", "dir/one.img") == info
    assert await store.exists("b1", "dir/one.img")

    reader = await store.open_read("b1", "dir/one.img", chunk_size=4096)
    assert b"".join([c async for c in reader]) == data
    ranged = await store.open_read("b1", "dir/one.img", offset=999, length=3)
    assert b"".join([c async for c in ranged]) == data[999:1002]
    with pytest.raises(InvalidRange):
        await store.open_read("b1", "dir/one.img", offset=len(data) + 1)

    await store.put("b1", "dir/two", chunks_of([b"2"]))
    await store.put("b1", "other", chunks_of([]))
    assert [o.key for o in await store.list("b1")] == ["dir/one.img", "dir/two", "other"]
    assert [o.key for o in await store.list("b1", prefix="dir/")] == ["dir/one.img", "dir/two"]
    assert [o.key for o in await store.list("b1", start_after="dir/one.img", limit=1)] == ["dir/two"]
    assert (await store.stat("b1", "other")).md5 == hashlib.md5(b"").hexdigest()

    with pytest.raises(BucketNotEmpty):
        await store.delete_bucket("b1")
    assert await store.delete("b1", "dir/one.img") is True
    assert await store.delete("b1", "dir/one.img") is False
    with pytest.raises(ObjectNotFound):
        await store.open_read("b1", "dir/one.img")
    assert await store.list_buckets() == ["b1"]


async def test_overwrite_replaces_atomically_and_frees_the_old_data(tmp_path: Path) -> None:
    store = ObjectStore(tmp_path)
    await store.put("b", "k", chunks_of([b"old contents"]))
    reader = await store.open_read("b", "k")  # opened before the overwrite
    await store.put("b", "k", chunks_of([b"new"]))
    assert b"".join([c async for c in reader]) == b"old contents"
    fresh = await store.open_read("b", "k")
    assert b"".join([c async for c in fresh]) == b"new"
    assert len([n for n in visible_files(tmp_path) if n.endswith(".data")]) == 1


async def test_a_failing_stream_leaves_no_object_and_no_temp_file(tmp_path: Path) -> None:
    store = ObjectStore(tmp_path)
    await store.put("b", "kept", chunks_of([b"v1"]))
    before = visible_files(tmp_path)
    with pytest.raises(ConnectionResetError):
        await store.put("b", "new", chunks_of([b"a" * 5000, b"b" * 5000], fail_after=1))
    with pytest.raises(ConnectionResetError):  # an overwrite that fails keeps the old object
        await store.put("b", "kept", chunks_of([b"x", b"y"], fail_after=1))
    with pytest.raises(ObjectTooLarge):
        await store.put("b", "big", chunks_of([b"12345", b"67890"]), max_size=8)
    assert visible_files(tmp_path) == before
    assert not await store.exists("b", "new")
    assert b"".join([c async for c in await store.open_read("b", "kept")]) == b"v1"


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 64 KiB filesystem (tmpfs; needs root to mount, fails otherwise)."""
    small = tmp_path / "small"
    small.mkdir()
    requires.tmpfs(small, "64k")
    try:
        yield small
    finally:
        subprocess.run(["umount", str(small)], check=True)


async def test_a_full_disk_is_a_storage_error_and_leaves_nothing(small_disk: Path) -> None:
    store = ObjectStore(small_disk)
    await store.put("b", "kept", chunks_of([b"v1"]))
    with pytest.raises(StorageFull, match="no space left"):
        await store.put("b", "big", chunks_of([b"x" * 32768] * 8))
    assert not await store.exists("b", "big")
    assert [o.key for o in await store.list("b")] == ["kept"]
    assert [p for p in visible_files(small_disk) if p.startswith("b/.tmp-")] == []


@pytest.mark.parametrize("bucket", ["..", ".", "../x", "a/b", "", ".hidden", "x" * 300])
async def test_bad_bucket_names_are_refused(tmp_path: Path, bucket: str) -> None:
    store = ObjectStore(tmp_path / "root")
    with pytest.raises(InvalidName):
        await store.put(bucket, "k", chunks_of([b"x"]))
    assert not (tmp_path / "x").exists()


async def test_keys_never_become_paths(tmp_path: Path) -> None:
    store = ObjectStore(tmp_path / "root")
    for key in ("../../escape", "/etc/passwd", "a/../../b", ".."):
        await store.put("b", key, chunks_of([key.encode()]))
        assert b"".join([c async for c in await store.open_read("b", key)]) == key.encode()
    assert all(name.startswith("root/b/") for name in visible_files(tmp_path))
    for key in ("", "a\x00b", "k" * 1025):
        with pytest.raises(InvalidName):
            await store.put("b", key, chunks_of([b"x"]))


async def test_garbage_of_a_crash_is_collected(tmp_path: Path) -> None:
    store = ObjectStore(tmp_path)
    await store.put("b", "k", chunks_of([b"kept"]))
    (tmp_path / "b" / ".tmp-deadbeef").write_bytes(b"half an object")
    (tmp_path / "b" / "abc.0123.data").write_bytes(b"renamed, never published")
    assert await store.collect_garbage("b", older_than=-1) == 2
    assert [o.key for o in await store.list("b")] == ["k"]
    assert b"".join([c async for c in await store.open_read("b", "k")]) == b"kept"
