"""VNC relay throughput: cloudd's console proxy (cloudd/vncproxy) against a direct TCP connection.

A controller (`cloudd serve`, fake driver, SQLite) runs as its own process; a server booted
through the REST API gets a console URL from ``os-getVNCConsole`` (a real consoleauth token),
and its token row is pointed at the VNC server measured (as tests/vncproxy does: the fake driver
has no VNC server). The same client code reads each server twice: once over TCP, once through
the proxy's websocket (aiohttp client, binary subprotocol), in this process.

Two VNC servers:
- ``stream``: a local TCP server (its own thread) that sends the RFB 3.8 banner, reads the
  client's, then streams `STREAM_MIB` MiB and closes: the relay's own ceiling;
- ``qemu``: a real QEMU VNC server (SeaBIOS on the VGA console, no disk); the client completes
  the RFB handshake, asks for raw encoding and then for full, non-incremental frame updates
  back to back for `QEMU_SECONDS` s: what a console can really pull from QEMU. QEMU sends an
  update at its display refresh tick (one 720x400x4 = 1.15 MB frame per ~0.1 s here), so this
  figure is QEMU's pace, and its ratio says whether the proxy slows a real console at all.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qs, urlsplit

import aiohttp
from cloud import BenchCloud, free_port

# The QEMU VNC server the console tests use too.
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests"))
from harness.qemu_vnc import QEMU, running_qemu_vnc

from cloudd import db as dbmod

RFB_BANNER = b"RFB 003.008\n"
STREAM_MIB = 128
QEMU_SECONDS = 3.0
MiB = 1 << 20


class ByteStream(Protocol):
    async def read(self) -> bytes: ...  # b"" at the end of the stream
    async def send(self, data: bytes) -> None: ...


class TcpStream:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    async def read(self) -> bytes:
        return await self.reader.read(MiB)

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()


class WsStream:
    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws

    async def read(self) -> bytes:
        msg = await self.ws.receive()
        return msg.data if msg.type == aiohttp.WSMsgType.BINARY else b""

    async def send(self, data: bytes) -> None:
        await self.ws.send_bytes(data)


class Buffered:
    """Exact reads over a stream whose chunks (TCP reads, websocket messages) fall anywhere."""

    def __init__(self, stream: ByteStream) -> None:
        self.stream, self.buffer = stream, bytearray()

    async def read_exactly(self, size: int) -> bytes:
        while len(self.buffer) < size:
            chunk = await self.stream.read()
            if not chunk:
                raise ConnectionError(f"stream ended {size - len(self.buffer)} bytes short")
            self.buffer += chunk
        data = bytes(self.buffer[:size])
        del self.buffer[:size]
        return data


Measure = Callable[[ByteStream], Awaitable[int]]  # bytes received after the handshake


async def drain_stream(stream: ByteStream) -> int:
    """The `stream` server: banner both ways, then every byte until it closes."""
    buffered = Buffered(stream)
    if await buffered.read_exactly(len(RFB_BANNER)) != RFB_BANNER:
        raise RuntimeError("not an RFB banner")
    await stream.send(RFB_BANNER)
    received = len(buffered.buffer)
    while chunk := await stream.read():
        received += len(chunk)
    if received != STREAM_MIB * MiB:
        raise RuntimeError(f"received {received} bytes of {STREAM_MIB * MiB}")
    return received


async def rfb_init(stream: Buffered) -> tuple[int, int, int]:
    """RFB 3.8 without authentication up to ServerInit; (width, height, bytes per pixel)."""
    await stream.read_exactly(len(RFB_BANNER))
    await stream.stream.send(RFB_BANNER)
    count = (await stream.read_exactly(1))[0]
    if 1 not in await stream.read_exactly(count):
        raise RuntimeError("the VNC server wants authentication")
    await stream.stream.send(b"\x01")  # security type None
    if struct.unpack(">I", await stream.read_exactly(4))[0] != 0:
        raise RuntimeError("RFB security handshake failed")
    await stream.stream.send(b"\x01")  # ClientInit: shared
    width, height = struct.unpack(">HH", await stream.read_exactly(4))
    bits_per_pixel = (await stream.read_exactly(16))[0]
    name_length = struct.unpack(">I", await stream.read_exactly(4))[0]
    await stream.read_exactly(name_length)
    await stream.stream.send(struct.pack(">BxHi", 2, 1, 0))  # SetEncodings: raw only
    return width, height, bits_per_pixel // 8


async def pull_frames(stream: ByteStream) -> int:
    """The `qemu` server: full raw frames, one request at a time, for QEMU_SECONDS."""
    buffered = Buffered(stream)
    width, height, pixel_bytes = await rfb_init(buffered)
    request = struct.pack(">BBHHHH", 3, 0, 0, 0, width, height)  # non-incremental
    received = 0
    deadline = time.monotonic() + QEMU_SECONDS
    while time.monotonic() < deadline:
        await stream.send(request)
        message, rects = struct.unpack(">BxH", await buffered.read_exactly(4))
        if message != 0:
            raise RuntimeError(f"unexpected RFB server message {message}")
        received += 4
        for _ in range(rects):
            _, _, rect_w, rect_h, encoding = struct.unpack(">HHHHi", await buffered.read_exactly(12))
            if encoding != 0:
                raise RuntimeError(f"unexpected encoding {encoding}")
            received += 12 + len(await buffered.read_exactly(rect_w * rect_h * pixel_bytes))
    return received


class StreamServer:
    """The `stream` VNC server: blocking sockets in a thread, off the client's event loop."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.sock.getsockname()[1])
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        payload = bytes(range(256)) * (MiB // 256)
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return  # closed
            with conn:
                conn.sendall(RFB_BANNER)
                if conn.recv(len(RFB_BANNER)) == RFB_BANNER:
                    for _ in range(STREAM_MIB):
                        conn.sendall(payload)

    def close(self) -> None:
        self.sock.close()


@dataclass
class VncBenchCloud(BenchCloud):
    """BenchCloud (fake driver) whose console proxy listens on a known loopback port."""

    proxy_port: int = 0

    def write_config(self) -> Path:
        self.proxy_port = free_port()
        path = super().write_config()
        with path.open("a") as conf:
            conf.write(f"[vnc]\nnovncproxy_host = 127.0.0.1\nnovncproxy_port = {self.proxy_port}\n"
                       f"novncproxy_base_url = http://127.0.0.1:{self.proxy_port}/vnc_lite.html\n")
        return path


async def console_token(cloud: BenchCloud, session: aiohttp.ClientSession) -> tuple[str, str]:
    """(server id, console token) of a server booted through the API."""
    servers = cloud.base + "/compute/v2.1/servers"
    body = {"server": {"name": "vnc-bench", "imageRef": await cloud.image_ref(session),
                       "flavorRef": "1"}}
    async with session.post(servers, json=body) as resp:
        server_id = str((await resp.json())["server"]["id"])
    for _ in range(200):
        async with session.get(f"{servers}/{server_id}") as resp:
            if (await resp.json())["server"]["status"] == "ACTIVE":
                break
        await asyncio.sleep(0.1)
    async with session.post(f"{servers}/{server_id}/action",
                            json={"os-getVNCConsole": {"type": "novnc"}},
                            headers={"X-OpenStack-Nova-API-Version": "2.1"}) as resp:
        url = (await resp.json())["console"]["url"]
    path = parse_qs(urlsplit(url).query)["path"][0]  # "?token=..."
    return server_id, parse_qs(path.lstrip("?"))["token"][0]


async def point_console_at(db_url: str, server_id: str, port: int) -> None:
    database = await dbmod.connect(db_url)
    try:
        await database.execute("UPDATE console_auth_tokens SET host = '127.0.0.1', port = $1"
                               " WHERE instance_uuid = $2", port, server_id)
    finally:
        await database.close()


async def both_ways(cloud: VncBenchCloud, session: aiohttp.ClientSession, server_id: str,
                    token: str, port: int, measure: Measure) -> dict[str, float]:
    """MB/s (10^6 bytes) read directly and through the proxy, and their ratio."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    started = time.monotonic()
    direct = await measure(TcpStream(reader, writer)) / (time.monotonic() - started) / 1e6
    writer.close()
    await point_console_at(cloud.db_url, server_id, port)
    async with session.ws_connect(f"http://127.0.0.1:{cloud.proxy_port}/?token={token}",
                                  protocols=("binary",), max_msg_size=0) as ws:
        started = time.monotonic()
        proxied = await measure(WsStream(ws)) / (time.monotonic() - started) / 1e6
    return {"direct_mb_s": direct, "proxy_mb_s": proxied, "ratio": proxied / direct}


async def vnc_bench() -> dict[str, Any]:
    """{"stream": {...}, "qemu": {...} or {"skipped": why}}."""
    with tempfile.TemporaryDirectory(prefix="cloudd-bench-vnc-") as tmp:
        cloud = VncBenchCloud(Path(tmp), f"sqlite:///{tmp}/cloudd.db", hosts=1)
        server = StreamServer()
        results: dict[str, Any] = {"stream_mib": STREAM_MIB, "qemu_seconds": QEMU_SECONDS}
        try:
            await cloud.start()
            async with aiohttp.ClientSession(headers=cloud.headers) as session:
                server_id, token = await console_token(cloud, session)
                results["stream"] = await both_ways(cloud, session, server_id, token,
                                                    server.port, drain_stream)
                if QEMU is None:
                    results["qemu"] = {"skipped": "qemu-system-x86_64 is not installed"}
                else:
                    async with running_qemu_vnc(settle=1.0) as port:
                        results["qemu"] = await both_ways(cloud, session, server_id, token,
                                                          port, pull_frames)
        finally:
            server.close()
            cloud.stop()
    return results


def table_rows(result: dict[str, Any]) -> list[str]:
    """Lines for run.py's table: through the proxy, beside the direct TCP connection."""
    lines = []
    for key, label in (("stream", f"VNC relay, {STREAM_MIB} MiB local RFB-like stream"),
                       ("qemu", "VNC relay, QEMU VNC raw full frames")):
        figures = result.get(key) or {"skipped": result.get("failed", "not measured")}
        if "skipped" in figures:
            lines.append(f"{label:<44} {'sqlite':<11} not measured: {figures['skipped']}")
            continue
        proxied = f"{figures['proxy_mb_s']:.1f} MB/s through the proxy"
        lines.append(f"{label:<44} {'sqlite':<11} {proxied:<34} direct TCP "
                     f"{figures['direct_mb_s']:.1f} MB/s; ratio {figures['ratio']:.2f}")
    return lines


if __name__ == "__main__":
    print(asyncio.run(vnc_bench()))
