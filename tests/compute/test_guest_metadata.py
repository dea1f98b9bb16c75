"""The test guest's metadata functions (scripts/guest/metadata.sh) against a hostile metadata
server: they run as the guest runs them — the busybox of the built initramfs, in a chroot of it
(its own UTS namespace, so `hostname` changes only there) — and fetch from a local HTTP server
that answers what a hostile or broken metadata service could."""
# ruff: noqa: F811 - the fixtures imported from harness.libvirt_host are test parameters here

from __future__ import annotations

import asyncio
import gzip
import json
import os
import stat
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from harness.libvirt_host import libvirt_host  # noqa: F401 - fixtures

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl user@host"
SCRIPT = "{ read_metadata; run_user_data; } >/dev/null 2>&1; echo \"hostname=$(hostname)\""


def unpack_initramfs(image: Path, into: Path) -> None:
    """A gzip'd newc cpio archive, unpacked (the machine has no cpio)."""
    data = gzip.decompress(image.read_bytes())
    offset = 0
    while True:
        fields = [int(data[offset + 6 + 8 * i:offset + 14 + 8 * i], 16) for i in range(13)]
        mode, size, name_size = fields[1], fields[6], fields[11]
        name = data[offset + 110:offset + 110 + name_size - 1].decode()
        offset += 110 + name_size + (-(110 + name_size) % 4)
        body = data[offset:offset + size]
        offset += size + (-size % 4)
        if name == "TRAILER!!!":
            return
        path = into / name
        if stat.S_ISDIR(mode):
            path.mkdir(parents=True, exist_ok=True)
        elif stat.S_ISLNK(mode):
            path.symlink_to(body.decode())
        else:
            path.write_bytes(body)
            path.chmod(mode & 0o777)


@pytest.fixture
def guest_root(libvirt_host: Path, tmp_path: Path) -> Path:
    root = tmp_path / "guest"
    root.mkdir()
    unpack_initramfs(libvirt_host / "initrd.img", root)
    return root


# The hostile server's answers by path (filled in by each test), and its port.
Hostile = tuple[dict[str, web.Response | bytes], int]


@pytest.fixture
async def hostile() -> AsyncIterator[Hostile]:
    """A metadata server answering ``answers[path]`` (404 for any other path)."""
    answers: dict[str, web.Response | bytes] = {}

    async def handle(request: web.Request) -> web.StreamResponse:
        answer = answers.get(request.path.strip("/"))
        if answer is None:
            raise web.HTTPNotFound()
        return web.Response(body=answer) if isinstance(answer, bytes) else answer

    app = web.Application()
    app.router.add_get("/{tail:.*}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield answers, port
    finally:
        await runner.cleanup()


async def run_guest_functions(root: Path, port: int) -> str:
    """Source metadata.sh in the chroot and run what /init runs; the hostname it ends with."""
    command = ["unshare", "--uts", "chroot", str(root), "/bin/busybox", "sh", "-c",
               "/bin/busybox --install -s /bin; export PATH=/bin;"
               f" METADATA=http://127.0.0.1:{port}; . /lib/cloudd/metadata.sh; {SCRIPT}"]
    result = await asyncio.to_thread(subprocess.run, command, capture_output=True, text=True,
                                     timeout=60, env={"PATH": os.environ["PATH"]})
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().removeprefix("hostname=")


def meta(hostname: str, keys: dict[str, str], **extra: object) -> bytes:
    return json.dumps({"uuid": "u", "name": "n", "hostname": hostname, **extra,
                       "public_keys": keys}).encode()


def authorized_keys(root: Path) -> str | None:
    path = root / "home/cloudd/.ssh/authorized_keys"
    return path.read_text() if path.exists() else None


async def test_shell_metacharacters_in_hostname_and_keys_stay_inert(guest_root: Path,
        hostile: Hostile) -> None:
    answers, port = hostile
    answers["openstack/latest/meta_data.json"] = meta(
        "a$(touch /tmp/pwned-host);b`touch /tmp/pwned-tick`.evil.example",
        {"k": KEY, "x": f"command=\"touch /tmp/pwned-key\" {KEY}", "y": f"{KEY}\nssh-rsa AAAA injected"},
        meta={"hostname": "from-meta"})
    answers["openstack/latest/user_data"] = b"touch /tmp/pwned-userdata\n"
    name = await run_guest_functions(guest_root, port)
    assert name == "atouchtmppwned-hostbtouchtmppwned-tick"
    assert not list((guest_root / "tmp").glob("pwned*"))
    # Only the key that is a plain OpenSSH public key line; the others are dropped whole.
    assert authorized_keys(guest_root) == KEY + "\n"


async def test_a_huge_answer_is_cut_and_the_init_goes_on(guest_root: Path,
        hostile: Hostile) -> None:
    answers, port = hostile
    answers["openstack/latest/meta_data.json"] = meta("big", {"k": KEY}, meta={"pad": "x" * (8 << 20)})
    answers["openstack/latest/user_data"] = b"#!/bin/sh\necho ran > /tmp/ran\n" + b"#" * (4 << 20)
    assert await run_guest_functions(guest_root, port) == "big"
    assert authorized_keys(guest_root) is None  # the keys came after the first 64 KiB
    assert (guest_root / "tmp/ran").read_text() == "ran\n"  # a script still runs (its first 64 KiB)


async def test_ec2_paths_when_the_openstack_ones_are_missing(guest_root: Path,
        hostile: Hostile) -> None:
    answers, port = hostile
    answers["latest/meta-data/hostname"] = b"ec2-guest.novalocal\n"
    answers["latest/meta-data/public-keys/0/openssh-key"] = (KEY + "\n").encode()
    answers["latest/user-data"] = b"#!/bin/sh\nhostname > /tmp/ran\n"
    assert await run_guest_functions(guest_root, port) == "ec2-guest"
    assert authorized_keys(guest_root) == KEY + "\n"
    assert (guest_root / "tmp/ran").read_text() == "ec2-guest\n"
    mode = (guest_root / "home/cloudd/.ssh/authorized_keys").stat()
    assert (mode.st_uid, stat.S_IMODE(mode.st_mode)) == (1000, 0o600)  # as Dropbear demands
