"""A file read in chunks off the event loop: an image the controller imports, a snapshot the
agent uploads. Pure: both processes import it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path

CHUNK_SIZE = 1024 * 1024  # the object store's chunk size (cloudd.objectstore.storage)


async def file_chunks(path: Path, progress: Callable[[int], None] | None = None) \
        -> AsyncIterator[bytes]:
    handle = await asyncio.to_thread(open, path, "rb")
    done = 0
    try:
        while chunk := await asyncio.to_thread(handle.read, CHUNK_SIZE):
            done += len(chunk)
            if progress is not None:
                progress(done)
            yield chunk
    finally:
        handle.close()
