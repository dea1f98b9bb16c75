"""Build rate as servers accumulate on one host (Nova's fell from 1.7/s to 0.3/s by 800 servers).

Boots `total` servers on a cloud of one simulated host without deleting them, `concurrency` at a
time, with the issue's client flow (POST, poll GET every 0.2 s until ACTIVE), and reports the rate
of each successive window of `window` servers.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
from cloud import BenchCloud, boot_until_active


async def accumulate(cloud: BenchCloud, total: int = 800, window: int = 100,
                     concurrency: int = 10) -> dict[str, Any]:
    finished: list[float] = []
    queue: asyncio.Queue[int] = asyncio.Queue()
    for index in range(total):
        queue.put_nowait(index)
    async with aiohttp.ClientSession(headers=cloud.headers) as session:
        image = await cloud.image_ref(session)
        started = time.monotonic()

        async def worker() -> None:
            while not queue.empty():
                queue.get_nowait()
                await boot_until_active(session, cloud, image, flavor="0")
                finished.append(time.monotonic())

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    finished.sort()
    rates = []
    previous = started
    for end in range(window, total + 1, window):
        at = finished[end - 1]
        rates.append(window / (at - previous))
        previous = at
    return {"total": total, "window": window, "concurrency": concurrency, "rates": rates}
