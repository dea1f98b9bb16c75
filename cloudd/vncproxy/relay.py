"""The byte relay between a browser's websocket and a guest's VNC server.

Each direction is one coroutine that reads, then waits until the other side has taken what it
was given (``drain``; aiohttp's ``send_bytes`` drains the socket's buffer) before reading more.
So a slow browser only slows its own console: its VNC server's TCP window fills up, and no other
connection or the loop waits for it. Data is forwarded as it arrives, in chunks of at most
`CHUNK` bytes, without being gathered or re-buffered here.
"""

from __future__ import annotations

import asyncio
import logging

from aiohttp import WSMsgType, web

from cloudd.metrics import CONSOLE_SESSIONS, CONSOLE_SESSIONS_OPEN

LOG = logging.getLogger(__name__)
CHUNK = 64 * 1024


async def relay(ws: web.WebSocketResponse, reader: asyncio.StreamReader,
                writer: asyncio.StreamWriter) -> str:
    """Relay until either side closes; returns which side ended the session."""
    CONSOLE_SESSIONS.inc()
    CONSOLE_SESSIONS_OPEN.inc()
    try:
        return await _relay(ws, reader, writer)
    finally:
        CONSOLE_SESSIONS_OPEN.dec()


async def _relay(ws: web.WebSocketResponse, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter) -> str:
    to_guest = asyncio.create_task(_browser_to_guest(ws, writer), name="vnc browser->guest")
    to_browser = asyncio.create_task(_guest_to_browser(reader, ws), name="vnc guest->browser")
    done, pending = await asyncio.wait({to_guest, to_browser},
                                       return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    writer.close()
    try:
        await writer.wait_closed()
    except (ConnectionError, OSError):
        pass
    ended_by = "browser" if to_guest in done else "guest"
    if not ws.closed:
        await ws.close(message=b"the console's VNC server closed the connection")
    return ended_by


async def _browser_to_guest(ws: web.WebSocketResponse, writer: asyncio.StreamWriter) -> None:
    async for msg in ws:
        if msg.type == WSMsgType.BINARY:
            writer.write(msg.data)
            await writer.drain()
        elif msg.type == WSMsgType.TEXT:
            # The binary subprotocol carries RFB in binary frames only.
            await ws.close(code=1003, message=b"text frames are not part of the binary subprotocol")
            return
        elif msg.type == WSMsgType.ERROR:
            return


async def _guest_to_browser(reader: asyncio.StreamReader, ws: web.WebSocketResponse) -> None:
    try:
        while True:
            data = await reader.read(CHUNK)
            if not data:
                return
            await ws.send_bytes(data)
    except (ConnectionError, OSError) as exc:
        LOG.debug("console relay ended: %s", exc)
