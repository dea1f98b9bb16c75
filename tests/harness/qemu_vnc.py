"""A real QEMU VNC server on loopback, shared by the console tests and `make bench`'s VNC relay
benchmark (which puts `tests/` on its path): plain asyncio, no pytest."""

from __future__ import annotations

import asyncio
import shutil
import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

QEMU = shutil.which("qemu-system-x86_64")


def free_vnc_port() -> int:
    """A free port of a VNC display (5900 + N), well above libvirt's autoport range."""
    for port in range(6200, 6900):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free VNC display")


@asynccontextmanager
async def running_qemu_vnc(settle: float = 0.0) -> AsyncIterator[int]:
    """A QEMU whose VNC server listens on 127.0.0.1 (SeaBIOS, no disk: it prints its banner and
    "No bootable device" on the VGA console); yields its port, ``settle`` seconds after the
    server first answers (SeaBIOS has drawn its screen by 1 s)."""
    if QEMU is None:
        raise RuntimeError("qemu-system-x86_64 is not installed (scripts/install-console.sh)")
    port = free_vnc_port()
    proc = await asyncio.create_subprocess_exec(
        QEMU, "-nodefaults", "-display", "none", "-vnc", f"127.0.0.1:{port - 5900}", "-vga", "std",
        "-machine", "pc", "-m", "64", "-no-reboot", "-boot", "menu=off",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.close()
                break
            except OSError:
                if proc.returncode is not None or time.monotonic() > deadline:
                    err = await proc.stderr.read() if proc.stderr else b""
                    raise RuntimeError(f"QEMU did not start its VNC server: {err!r}") from None
                await asyncio.sleep(0.05)
        await asyncio.sleep(settle)
        yield port
    finally:
        if proc.returncode is None:
            proc.kill()
        await proc.wait()
