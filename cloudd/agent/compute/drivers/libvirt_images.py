"""The per-host image cache and disk helpers of the libvirt driver.

Base images live in ``<instances_path>/_base/<image id>``: fetched once (copied from the local
file the manager gives, or downloaded from the controller's image route), shared by every guest
that uses the image, and removed once no instance refers to them. A base is inspected against
its declared disk_format before every use (cloudd.image.inspector). qemu-img runs as an asyncio
subprocess so it never stalls the loop, under prlimit, and always told the format.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import shutil
import ssl
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import aiohttp

from cloudd.agent.compute.drivers.base import DriverError, GuestSpec
from cloudd.image import inspector
from cloudd.rpc.contracts.compute import ImageInfo

LOG = logging.getLogger(__name__)
_SAFE_ID = re.compile(r"^[A-Za-z0-9._-]+$")
_CHUNK = 1 << 20
# The agent's TLS client context for the controller's image route (mutual TLS: enrolled hosts).
TlsContext = Callable[[], ssl.SSLContext]


# Nova's limits for qemu-img (nova.virt.images.QEMU_IMG_LIMITS): a crafted header cannot make
# it eat the host's memory or spin for ever. A snapshot's convert copies a whole disk, so it gets
# more CPU time; its memory stays bounded the same way.
QEMU_IMG_LIMITS = ("--as=1073741824", "--cpu=30")
CONVERT_LIMITS = ("--as=1073741824", "--cpu=1800")


async def qemu_img(*args: str, limits: tuple[str, ...] = QEMU_IMG_LIMITS) -> str:
    """Run qemu-img under ``prlimit``. Callers always pass ``-f`` (and ``-F`` for a backing
    file): qemu-img must never guess a format from content a tenant wrote."""
    process = await asyncio.create_subprocess_exec(
        "prlimit", *limits, "qemu-img", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    if process.returncode != 0:
        raise DriverError(f"qemu-img {args[0]} failed: {err.decode(errors='replace').strip()}")
    return out.decode()


async def image_info(path: Path, disk_format: str) -> dict[str, Any]:
    """``qemu-img info`` as a dict (``virtual-size``...), opened as ``disk_format``."""
    info: dict[str, Any] = json.loads(
        await qemu_img("info", "-f", disk_format, "--output=json", "-U", str(path)))
    return info


async def create_overlay(base: Path, base_format: str, path: Path, size_bytes: int | None) -> None:
    """A qcow2 disk whose unwritten blocks come from ``base`` (an inspected image whose qemu
    format is ``base_format``), at least as big."""
    base_info = await image_info(base, base_format)
    size = max(size_bytes or 0, int(base_info["virtual-size"]))
    await qemu_img("create", "-q", "-f", "qcow2", "-b", str(base), "-F", base_format,
                   str(path), str(size))


async def create_blank(path: Path, size_bytes: int) -> None:
    await qemu_img("create", "-q", "-f", "qcow2", str(path), str(size_bytes))


async def grow(path: Path, size_bytes: int) -> None:
    """Grow one of the driver's own qcow2 disks to ``size_bytes``; never shrinks (Nova refuses
    smaller root disks too)."""
    if size_bytes > int((await image_info(path, "qcow2"))["virtual-size"]):
        await qemu_img("resize", "-q", "-f", "qcow2", str(path), str(size_bytes))


async def convert_to_qcow2(source: Path, dest: Path) -> None:
    """A standalone qcow2 copy of a guest's qcow2 disk (its backing chain flattened): a
    snapshot image."""
    await qemu_img("convert", "-q", "-U", "-f", "qcow2", "-O", "qcow2", str(source), str(dest),
                   limits=CONVERT_LIMITS)


def with_boot_images(spec: GuestSpec) -> GuestSpec:
    """The EC2 AKI/ARI model: an image whose ``kernel_id``/``ramdisk_id`` properties name other
    images boots them directly (Nova's libvirt driver fetches them like the root image)."""
    properties = spec.image.properties if spec.image is not None else {}
    update: dict[str, ImageInfo] = {}
    for key, kind, disk_format in (("kernel_id", "kernel", "aki"), ("ramdisk_id", "ramdisk", "ari")):
        if getattr(spec, kind) is None and properties.get(key):
            update[kind] = ImageInfo(id=properties[key], disk_format=disk_format)
    return spec.model_copy(update=update) if update else spec


class ImageCache:
    """``_base`` of one instances_path. ``fetch`` is safe to call concurrently."""

    def __init__(self, instances_path: Path, image_url_template: str = "",
                 tls: TlsContext | None = None) -> None:
        self.base_dir = instances_path / "_base"
        # e.g. "https://controller:8780/images/{id}"; empty: only local files can be used.
        self.image_url_template = image_url_template
        self.tls = tls
        self._locks: dict[str, asyncio.Lock] = {}
        self._fetching: set[str] = set()

    def path(self, image_id: str) -> Path:
        if not _SAFE_ID.match(image_id):
            raise DriverError(f"image id {image_id!r} cannot name a cache file")
        return self.base_dir / image_id

    async def fetch(self, image: ImageInfo) -> tuple[Path, str]:
        """The cached base of ``image`` (fetched first if this host does not have it) and the
        format qemu must open it with. The file is inspected against the image's disk_format
        on every use, whoever put it there: a refused one raises DriverError and is never
        handed to qemu-img or libvirt."""
        target = self.path(image.id)
        lock = self._locks.setdefault(image.id, asyncio.Lock())
        async with lock:
            if not await asyncio.to_thread(target.exists):
                await self._fill(image, target)
            try:
                qemu_format = await inspector.inspect_image(target, image.disk_format)
            except inspector.ImageUnacceptable as exc:
                raise DriverError(f"image {image.id} refused on this host: {exc}") from None
        return target, qemu_format

    async def _fill(self, image: ImageInfo, target: Path) -> None:
        self._fetching.add(image.id)
        partial = target.with_name(target.name + ".part")
        try:
            await asyncio.to_thread(self.base_dir.mkdir, mode=0o755, parents=True, exist_ok=True)
            if image.path:
                await asyncio.to_thread(shutil.copyfile, image.path, partial)
            else:
                await self._download(image.id, partial)
            try:  # a refused download never enters the cache
                await inspector.inspect_image(partial, image.disk_format)
            except inspector.ImageUnacceptable as exc:
                await asyncio.to_thread(partial.unlink, missing_ok=True)
                raise DriverError(f"image {image.id} refused on this host: {exc}") from None
            await asyncio.to_thread(os.chmod, partial, 0o644)
            await asyncio.to_thread(os.replace, partial, target)
        finally:
            self._fetching.discard(image.id)
        LOG.info("image %s cached in %s", image.id, target)

    async def _download(self, image_id: str, partial: Path) -> None:
        if not self.image_url_template:
            raise DriverError(f"image {image_id} has no local file and no image URL is configured")
        url = self.image_url_template.format(id=image_id)
        if self.tls is None:
            raise DriverError(f"image {image_id} has no local file and this host has no certificate")
        try:
            async with aiohttp.ClientSession() as session, \
                    session.get(url, ssl=self.tls()) as response:
                if response.status != 200:
                    raise DriverError(f"cannot fetch image {image_id}: HTTP {response.status} from {url}")
                with open(partial, "wb") as out:  # noqa: ASYNC230 - writes are chunked to threads
                    async for chunk in response.content.iter_chunked(_CHUNK):
                        await asyncio.to_thread(out.write, chunk)
        except aiohttp.ClientError as exc:
            raise DriverError(f"cannot fetch image {image_id} from {url}: {exc}") from exc

    async def remove_unused(self, in_use: Iterable[str]) -> list[str]:
        """Delete cached bases no instance uses (and none being fetched); returns their ids."""
        keep = set(in_use) | self._fetching
        return await asyncio.to_thread(self._remove_unused, keep)

    def _remove_unused(self, keep: set[str]) -> list[str]:
        removed: list[str] = []
        if not self.base_dir.is_dir():
            return removed
        for entry in self.base_dir.iterdir():
            if entry.name in keep or entry.name.endswith(".part"):
                continue
            entry.unlink(missing_ok=True)
            removed.append(entry.name)
        return removed
