"""Image bytes between the agent and the controller, over the agent listener's port: the agent's
side. `upload_snapshot` / `download_image`, given the controller's websocket URL
(wss://ctl:8780/agent, which names the same listener) and the agent's TLS client context. The
controller's routes are cloudd.api.image.agent_routes (with cloudd.image.transfer).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import aiohttp

from cloudd.image.chunks import file_chunks

TRANSFER_TIMEOUT = aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=300)


class TransferError(Exception):
    pass


def http_base(controller_ws_url: str) -> str:
    """wss://ctl:8780/agent -> https://ctl:8780 (the listener is TLS only: ws:// too)."""
    parts = urlsplit(controller_ws_url)
    return urlunsplit(("https", parts.netloc, "", "", ""))


async def upload_snapshot(controller_ws_url: str, image_id: str, path: Path,
                          tls: ssl.SSLContext) -> None:
    url = f"{http_base(controller_ws_url)}/images/{image_id}/snapshot"
    size = (await asyncio.to_thread(path.stat)).st_size
    async with aiohttp.ClientSession(timeout=TRANSFER_TIMEOUT) as session, session.put(
            url, data=file_chunks(path), headers={"Content-Length": str(size),
                                                  "Content-Type": "application/octet-stream"},
            ssl=tls,
    ) as response:
        if response.status != 204:
            raise TransferError(f"uploading snapshot {image_id} failed: {response.status} "
                                f"{(await response.text())[:200]}")


async def download_image(controller_ws_url: str, image_id: str, dest: Path,
                         tls: ssl.SSLContext) -> int:
    """Fetch an image into `dest` (written to a temp name, then renamed); its size."""
    url = f"{http_base(controller_ws_url)}/images/{image_id}"
    temp = dest.with_name(f".{dest.name}.part")
    async with aiohttp.ClientSession(timeout=TRANSFER_TIMEOUT) as session, \
            session.get(url, ssl=tls) as response:
        if response.status != 200:
            raise TransferError(f"downloading image {image_id} failed: {response.status}")
        size = await _save(response.content.iter_chunked(1024 * 1024), temp)
    await asyncio.to_thread(temp.rename, dest)
    return size


async def _save(chunks: AsyncIterator[bytes], temp: Path) -> int:
    handle = await asyncio.to_thread(open, temp, "wb")
    size = 0
    try:
        async for chunk in chunks:
            await asyncio.to_thread(handle.write, chunk)
            size += len(chunk)
    except BaseException:
        handle.close()
        # Plain call, also under cancellation: unlinking one file is quick.
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise
    handle.close()
    return size
