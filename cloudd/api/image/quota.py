"""Glance's per-project image quotas (unified limits image_size_total in MiB and
image_count_total, from cloudd.storage_quota): 413 past them, as Glance answers, and
GET /v2/info/usage, Glance's view of them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from cloudd import storage_quota
from cloudd.api.image.common import context, database, size_cap
from cloudd.api.image.errors import TooLarge
from cloudd.db import Executor


async def check_image_count(db: Executor, owner: str | None) -> None:
    """Before an image record is made for `owner` (None: nobody's, never limited)."""
    if owner is None:
        return
    space = await storage_quota.room(db, owner, "image")
    if not space.count_fits:
        raise TooLarge("Quota exceeded: the project has reached its image_count_total limit.")


async def bounded_upload(request: web.Request, image: dict[str, Any],
                         chunks: AsyncIterator[bytes]) -> tuple[int, AsyncIterator[bytes]]:
    """(the size cap, the metered chunks) for an upload of `image`'s data: the cap is the
    smaller of Glance's image_size_cap and what is left of the owner's image_size_total."""
    cap = size_cap(request)
    if image["owner"] is None:
        return cap, chunks
    space = await storage_quota.room(database(request), image["owner"], "image", new_item=False)
    if space.bytes_left is not None:
        cap = min(cap, space.bytes_left)
    return cap, storage_quota.metered(chunks, image["owner"], space, lambda: TooLarge(
        "Image exceeds the storage quota: the project's image_size_total would be exceeded."))


async def usage(request: web.Request) -> web.Response:
    """GET /v2/info/usage: the caller's project's limits and usage (Glance's format)."""
    project_id = context(request).project_id
    if project_id is None:
        return web.json_response({"usage": {}})
    db = database(request)
    limits = await storage_quota.storage_limits(db, project_id)
    used = await storage_quota.storage_usage(db, project_id)
    uploading = await db.fetchval("SELECT COUNT(*) FROM images WHERE owner = $1 AND"
                                  " status = 'saving'", project_id)
    body = {name: {"limit": limits[name], "usage": used[name]}
            for name in ("image_size_total", "image_count_total")}
    body["image_count_uploading"] = {"limit": limits["image_count_total"],
                                     "usage": int(uploading or 0)}
    return web.json_response({"usage": body})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/v2/info/usage", usage)
