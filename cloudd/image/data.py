"""Image bytes from a local file: `import_image` (what `cloudd manage image import` does); the
chunked file reader it uses is cloudd.image.chunks."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from cloudd.db import Database
from cloudd.image import records
from cloudd.image.chunks import file_chunks
from cloudd.objectstore.storage import ObjectStore


async def import_image(db: Database, object_store: ObjectStore, path: Path | str, name: str, *,
                       disk_format: str = "qcow2", container_format: str = "bare",
                       public: bool = False, owner: str | None = None,
                       properties: dict[str, str] | None = None, image_id: str | None = None,
                       progress: Callable[[int, int], None] | None = None) -> records.Image:
    """Create an image from a local file (what `cloudd manage image import` does) and return
    its record. `progress(bytes_done, total)` is called per chunk. On failure no image remains."""
    path = Path(path)
    total = (await asyncio.to_thread(path.stat)).st_size
    if disk_format not in records.DISK_FORMATS:
        raise ValueError(f"disk format must be one of {', '.join(records.DISK_FORMATS)}")
    if container_format not in records.CONTAINER_FORMATS:
        raise ValueError(f"container format must be one of {', '.join(records.CONTAINER_FORMATS)}")
    image = await records.create(db, owner=owner, name=name,
                                 visibility="public" if public else "private",
                                 disk_format=disk_format, container_format=container_format,
                                 properties=properties, image_id=image_id)
    report = (lambda done: progress(done, total)) if progress is not None else None
    try:
        return await records.store_data(db, object_store, image.id, file_chunks(path, report))
    except BaseException:
        await records.delete(db, object_store, image.id)
        raise

