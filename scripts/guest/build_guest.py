"""Assemble the cloudd test guest from an unpacked Debian kernel and busybox-static.

Called by scripts/build-guest-image.sh. Writes to OUT: ``vmlinuz`` (the bzImage, shows its console
on VGA), ``vmlinux`` (the same kernel uncompressed: boots about twice as fast under TCG, but
without a VGA console) and ``initrd.img`` (a gzip'd newc cpio archive, written here because the
machine has no ``cpio``).
"""

from __future__ import annotations

import argparse
import gzip
import lzma
import shutil
import stat
from pathlib import Path

HERE = Path(__file__).resolve().parent
# Load order matters: each module needs the symbols of those before it.
MODULES = [
    "virtio_ring", "virtio", "virtio_pci_legacy_dev", "virtio_pci_modern_dev", "virtio_pci",
    "failover", "net_failover", "virtio_net", "virtio_blk", "button", "evdev",
]
XZ_MAGIC = b"\xfd7zXZ\x00"
POWER_BUTTON_HOOK = (
    "#!/bin/sh\necho 'cloudd-guest: power button, powering off' > /dev/ttyS0\nsync\npoweroff -f\n"
)


def extract_vmlinux(bzimage: bytes) -> bytes:
    """The bzImage's payload is one xz stream; decompressing it gives the ELF ``vmlinux``."""
    start = bzimage.find(XZ_MAGIC)
    if start < 0:
        raise SystemExit("no xz stream in the kernel image")
    decompressor = lzma.LZMADecompressor(format=lzma.FORMAT_XZ)
    return decompressor.decompress(bzimage[start:])


class Cpio:
    """A newc ("070701") archive built in memory, as the kernel's initramfs unpacker reads it."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.inode = 1

    def add(self, name: str, mode: int, data: bytes = b"") -> None:
        encoded = name.encode() + b"\0"
        fields = [self.inode, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(encoded), 0]
        header = b"070701" + b"".join(b"%08X" % value for value in fields)
        self.inode += 1
        self.chunks.append(_pad(header + encoded))
        self.chunks.append(_pad(data))

    def directory(self, name: str) -> None:
        self.add(name, stat.S_IFDIR | 0o755)

    def file(self, name: str, data: bytes, mode: int = 0o644) -> None:
        self.add(name, stat.S_IFREG | mode, data)

    def finish(self) -> bytes:
        self.add("TRAILER!!!", 0)
        return b"".join(self.chunks)


def _pad(data: bytes) -> bytes:
    return data + b"\0" * (-len(data) % 4)


def build_initramfs(kernel_tree: Path, busybox: Path) -> bytes:
    archive = Cpio()
    for directory in ("bin", "dev", "etc", "etc/acpi", "etc/acpi/PWRF",
                      "etc/acpi/PWRF/00000080", "lib", "lib/modules",
                      "mnt", "proc", "root", "run", "sys", "tmp"):
        archive.directory(directory)
    archive.file("init", (HERE / "init.sh").read_bytes(), 0o755)
    archive.file("bin/busybox", busybox.read_bytes(), 0o755)
    archive.file("etc/udhcpc.script", (HERE / "udhcpc.script").read_bytes(), 0o755)
    # busybox acpid run-parts the directory named after the event (a plain file is ignored).
    archive.file("etc/acpi/PWRF/00000080/poweroff", POWER_BUTTON_HOOK.encode(), 0o755)
    # An empty root password: the console login prompt lets anyone in, as CirrOS's does.
    archive.file("etc/passwd", b"root::0:0:root:/root:/bin/sh\n")
    archive.file("etc/group", b"root:x:0:\n")
    # Static glibc still consults NSS; without these busybox's wget crashes on its first lookup.
    archive.file("etc/nsswitch.conf", b"passwd: files\ngroup: files\nhosts: files dns\nservices: files\n")
    archive.file("etc/services", b"http 80/tcp\n")
    archive.file("etc/hosts", b"127.0.0.1 localhost\n")
    archive.file("etc/issue", b"cloudd test guest (busybox) \\n \\l\n\n")
    found = {path.name.removesuffix(".ko"): path for path in kernel_tree.rglob("*.ko")}
    present = [name for name in MODULES if name in found]
    for name in present:
        archive.file(f"lib/modules/{name}.ko", found[name].read_bytes())
    archive.file("lib/modules/order", ("\n".join(present) + "\n").encode())
    return gzip.compress(archive.finish(), compresslevel=9, mtime=0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--kernel-tree", type=Path, required=True, help="unpacked linux-image .deb")
    parser.add_argument("--busybox", type=Path, required=True, help="a static busybox binary")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    bzimage_path = next((args.kernel_tree / "boot").glob("vmlinuz-*"))
    shutil.copyfile(bzimage_path, args.out / "vmlinuz")
    (args.out / "vmlinux").write_bytes(extract_vmlinux(bzimage_path.read_bytes()))
    (args.out / "initrd.img").write_bytes(build_initramfs(args.kernel_tree, args.busybox))


if __name__ == "__main__":
    main()
