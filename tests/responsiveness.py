"""Is the event loop still serving while a hostile request runs? The cloud under test shares the
test's loop, so anything that blocks it delays a /healthz in flight."""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Awaitable
from typing import TypeVar

import aiohttp

T = TypeVar("T")


async def healthz_while(session: aiohttp.ClientSession, base: str, hostile: Awaitable[T]
                        ) -> tuple[T, float]:
    """Run `hostile` while `base`/healthz is asked again and again: (its result, the slowest
    /healthz answer in seconds).

    The objects earlier tests left in this process are frozen out of the garbage collector's
    view while it runs: after a hundred tests the heap holds ~500,000 objects and a full
    collection of them takes 0.3 s (measured), a pause the hostile request did not cause. What
    the request and the server allocate meanwhile is still collected, and still timed."""
    gc.freeze()
    try:
        task = asyncio.ensure_future(hostile)
        worst = 0.0
        while True:
            start = time.monotonic()
            async with session.get(f"{base}/healthz") as resp:
                await resp.read()
            worst = max(worst, time.monotonic() - start)
            if task.done():
                return await task, worst
    finally:
        gc.unfreeze()
