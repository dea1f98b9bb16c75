"""Assemble the cloudd test guest from an unpacked Debian kernel, busybox-static and Dropbear.

Called by scripts/build-guest-image.sh. Writes to OUT: ``vmlinuz`` (the bzImage, shows its console
on VGA), ``vmlinux`` (the same kernel uncompressed: boots about twice as fast under TCG, but
without a VGA console) and ``initrd.img`` (a gzip'd newc cpio archive, written here because the
machine has no ``cpio``). Dropbear comes with the shared libraries it needs, taken from the
unpacked .deb files (``--userland``), not from the build host, so the build is reproducible.
"""

from __future__ import annotations

import argparse
import gzip
import lzma
import shutil
import stat
import struct
from pathlib import Path

HERE = Path(__file__).resolve().parent
# Load order matters: each module needs the symbols of those before it.
# The power button's come first (lib/modules/early): /init starts acpid before anything slow.
EARLY_MODULES = ["button", "evdev"]
MODULES = [
    "virtio_ring", "virtio", "virtio_pci_legacy_dev", "virtio_pci_modern_dev", "virtio_pci",
    "failover", "net_failover", "virtio_net", "virtio_blk",
]
LOGIN_USER = "cloudd"  # CirrOS's "cirros": SSH logins with the key pair's key (no password)
LIBRARY_DIRS = ["lib/x86_64-linux-gnu", "usr/lib/x86_64-linux-gnu"]
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

    def symlink(self, name: str, target: str) -> None:
        self.add(name, stat.S_IFLNK | 0o777, target.encode())

    def finish(self) -> bytes:
        self.add("TRAILER!!!", 0)
        return b"".join(self.chunks)


def _pad(data: bytes) -> bytes:
    return data + b"\0" * (-len(data) % 4)


def elf_dependencies(elf: bytes) -> tuple[str | None, list[str]]:
    """The program interpreter (PT_INTERP) and the DT_NEEDED sonames of an ELF64 file."""
    if elf[:4] != b"\x7fELF" or elf[4] != 2:
        raise SystemExit("not an ELF64 file")
    phoff, shoff = struct.unpack_from("<QQ", elf, 0x20)
    phentsize, phnum, shentsize, shnum = struct.unpack_from("<HHHH", elf, 0x36)
    interpreter = None
    for index in range(phnum):
        p_type, _, p_offset, _, _, p_filesz = struct.unpack_from("<IIQQQQ", elf, phoff + index * phentsize)
        if p_type == 3:  # PT_INTERP
            interpreter = elf[p_offset:p_offset + p_filesz].rstrip(b"\0").decode()
    sections = [struct.unpack_from("<IIQQQQII", elf, shoff + index * shentsize)
                for index in range(shnum)]
    needed: list[str] = []
    for _, sh_type, _, _, offset, size, link, _ in sections:
        if sh_type != 6:  # SHT_DYNAMIC; sh_link names its string table
            continue
        strtab = sections[link][4]
        for entry in range(0, size, 16):
            tag, value = struct.unpack_from("<qQ", elf, offset + entry)
            if tag == 1:  # DT_NEEDED
                end = elf.index(b"\0", strtab + value)
                needed.append(elf[strtab + value:end].decode())
    return interpreter, needed


def add_dropbear(archive: Cpio, userland: Path) -> None:
    """Dropbear and, transitively, every library it links, under /lib/x86_64-linux-gnu."""
    dropbear = (userland / "usr/sbin/dropbear").read_bytes()
    archive.file("bin/dropbear", dropbear, 0o755)
    interpreter, pending = elf_dependencies(dropbear)
    copied: set[str] = set()
    while pending:
        soname = pending.pop()
        if soname in copied:
            continue
        path = next((userland / d / soname for d in LIBRARY_DIRS if (userland / d / soname).exists()), None)
        if path is None:
            raise SystemExit(f"dropbear needs {soname}, which no unpacked package holds")
        data = path.resolve().read_bytes()
        archive.file(f"lib/x86_64-linux-gnu/{soname}", data, 0o755)
        copied.add(soname)
        pending.extend(elf_dependencies(data)[1])
    if interpreter:  # /lib64/ld-linux-x86-64.so.2: the loader where the binary looks for it
        archive.symlink(interpreter.lstrip("/"), f"/lib/x86_64-linux-gnu/{Path(interpreter).name}")


def build_initramfs(kernel_tree: Path, busybox: Path, userland: Path) -> bytes:
    archive = Cpio()
    for directory in ("bin", "dev", "etc", "etc/acpi", "etc/acpi/PWRF",
                      "etc/acpi/PWRF/00000080", "etc/dropbear", "home", f"home/{LOGIN_USER}",
                      "lib", "lib/cloudd", "lib/modules", "lib/x86_64-linux-gnu", "lib64",
                      "mnt", "proc", "root", "run", "sys", "tmp", "var", "var/log"):
        archive.directory(directory)
    archive.file("init", (HERE / "init.sh").read_bytes(), 0o755)
    archive.file("lib/cloudd/metadata.sh", (HERE / "metadata.sh").read_bytes())
    archive.file("bin/busybox", busybox.read_bytes(), 0o755)
    archive.file("etc/udhcpc.script", (HERE / "udhcpc.script").read_bytes(), 0o755)
    # busybox acpid run-parts the directory named after the event (a plain file is ignored).
    archive.file("etc/acpi/PWRF/00000080/poweroff", POWER_BUTTON_HOOK.encode(), 0o755)
    add_dropbear(archive, userland)
    # An empty root password: the console login prompt lets anyone in, as CirrOS's does. The
    # login user has no password ("*"): SSH with the key pair's key only.
    archive.file("etc/passwd", f"root::0:0:root:/root:/bin/sh\n"
                 f"{LOGIN_USER}:*:1000:1000:{LOGIN_USER}:/home/{LOGIN_USER}:/bin/sh\n".encode())
    archive.file("etc/group", f"root:x:0:\n{LOGIN_USER}:x:1000:\n".encode())
    archive.file("etc/shells", b"/bin/sh\n/bin/ash\n")  # Dropbear refuses a shell not listed
    # Static glibc still consults NSS; without these busybox's wget crashes on its first lookup.
    archive.file("etc/nsswitch.conf", b"passwd: files\ngroup: files\nhosts: files dns\nservices: files\n")
    archive.file("etc/services", b"http 80/tcp\n")
    archive.file("etc/hosts", b"127.0.0.1 localhost\n")
    archive.file("etc/issue", b"cloudd test guest (busybox) \\n \\l\n\n")
    found = {path.name.removesuffix(".ko"): path for path in kernel_tree.rglob("*.ko")}
    for listing, names in (("early", EARLY_MODULES), ("order", MODULES)):
        present = [name for name in names if name in found]
        for name in present:
            archive.file(f"lib/modules/{name}.ko", found[name].read_bytes())
        archive.file(f"lib/modules/{listing}", ("\n".join(present) + "\n").encode())
    return gzip.compress(archive.finish(), compresslevel=9, mtime=0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--kernel-tree", type=Path, required=True, help="unpacked linux-image .deb")
    parser.add_argument("--busybox", type=Path, required=True, help="a static busybox binary")
    parser.add_argument("--userland", type=Path, required=True,
                        help="dropbear-bin and the packages of its libraries, unpacked together")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    bzimage_path = next((args.kernel_tree / "boot").glob("vmlinuz-*"))
    shutil.copyfile(bzimage_path, args.out / "vmlinuz")
    (args.out / "vmlinux").write_bytes(extract_vmlinux(bzimage_path.read_bytes()))
    (args.out / "initrd.img").write_bytes(build_initramfs(args.kernel_tree, args.busybox, args.userland))


if __name__ == "__main__":
    main()
