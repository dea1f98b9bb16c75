#!/usr/bin/env python3
"""Register the tiny cloudd guest (scripts/build-guest-image.sh) as public images, idempotently.

    .venv/bin/python scripts/register-guest.py [--config FILE] [GUEST_DIR]
    .venv/bin/python scripts/register-guest.py [--config FILE] --print-driver

Three images, the EC2 AKI/ARI model the libvirt driver boots directly:

    cloudd-guest-kernel   vmlinuz      aki   (the bzImage: its console shows on VGA/noVNC)
    cloudd-guest-ramdisk  initrd.img   ari
    cloudd-guest          disk.qcow2   qcow2, properties kernel_id and ramdisk_id

An image that already exists with the same name and the file's checksum is kept (nothing is
imported again on the next `make run`); one whose file changed (a rebuilt guest) is replaced.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import sys
from pathlib import Path
from typing import Any

from cloudd.config import CloudConfig, find_config, load_config
from cloudd.image import records
from cloudd.image.data import import_image
from cloudd.image.records import image_store
from cloudd.manage.common import open_db

DEFAULT_GUEST_DIR = "/var/cache/cloudd/guest"
KERNEL = ("cloudd-guest-kernel", "vmlinuz", "aki")
RAMDISK = ("cloudd-guest-ramdisk", "initrd.img", "ari")
DISK = ("cloudd-guest", "disk.qcow2", "qcow2")


def md5_of(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as data:
        for chunk in iter(lambda: data.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


async def ensure_image(db: Any, cfg: CloudConfig, guest_dir: Path, spec: tuple[str, str, str],
                       properties: dict[str, str] | None = None) -> str:
    """The id of the public image ``name`` holding this file (and properties), importing it
    (and removing stale images of that name) when there is none."""
    name, filename, disk_format = spec
    path = guest_dir / filename
    checksum = await asyncio.to_thread(md5_of, path)
    rows = await db.fetch("SELECT * FROM images WHERE name = $1 AND visibility = 'public'", name)
    stale = []
    for found in map(records.from_row, rows):
        wanted = {k: found.properties.get(k) for k in properties or {}}
        if found.status == "active" and found.checksum == checksum \
                and wanted == (properties or {}):
            print(f"{name}: already registered as {found.id}")
            return found.id
        stale.append(found.id)
    store = image_store(cfg)
    for image_id in stale:  # one image per name: `--image cloudd-guest` must stay unambiguous
        await records.delete(db, store, image_id)
    container = disk_format if disk_format in ("aki", "ari") else "bare"
    image = await import_image(db, store, path, name, disk_format=disk_format,
                               container_format=container, public=True, properties=properties)
    print(f"{name}: imported {filename} as {image.id}")
    return image.id


async def register(cfg: CloudConfig, guest_dir: Path) -> None:
    db = await open_db(cfg)
    try:
        await db.migrate()
        kernel_id = await ensure_image(db, cfg, guest_dir, KERNEL)
        ramdisk_id = await ensure_image(db, cfg, guest_dir, RAMDISK)
        await ensure_image(db, cfg, guest_dir, DISK,
                           {"kernel_id": kernel_id, "ramdisk_id": ramdisk_id})
    finally:
        await db.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", help="config file (default: $CLOUDD_CONFIG, /etc/cloudd/cloudd.conf)")
    parser.add_argument("--print-driver", action="store_true",
                        help="print [compute] compute_driver of the config and exit")
    parser.add_argument("guest_dir", nargs="?", default=DEFAULT_GUEST_DIR)
    args = parser.parse_args()
    cfg = load_config(find_config(args.config))
    if args.print_driver:
        print(cfg.compute.compute_driver)
        return 0
    guest_dir = Path(args.guest_dir)
    missing = [f for _, f, _ in (KERNEL, RAMDISK, DISK) if not (guest_dir / f).is_file()]
    if missing:
        print(f"register-guest: {', '.join(missing)} missing in {guest_dir}"
              " (run scripts/build-guest-image.sh)", file=sys.stderr)
        return 1
    asyncio.run(register(cfg, guest_dir))
    return 0


if __name__ == "__main__":
    sys.exit(main())
