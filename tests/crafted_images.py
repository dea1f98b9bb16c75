"""Image files made by the real qemu-img, good ones and ones whose headers name host files
(OSSA-2015-014, CVE-2024-32498), for the upload and the on-host inspection tests."""

from __future__ import annotations

import subprocess
from pathlib import Path

# A host file a crafted image names: the guest would read it as its disk.
HOST_FILE = "/etc/passwd"

# The crafted kinds (each refused whatever disk_format is declared) and the format each
# content really is.
CRAFTED = {
    "qcow2-backing-file": "qcow2",
    "qcow2-data-file": "qcow2",
    "vmdk-flat-extent": "vmdk",
}


def _qemu_img(*args: str) -> None:
    subprocess.run(["qemu-img", *args], check=True, capture_output=True, timeout=60)


def make_image(kind: str, directory: Path) -> Path:
    """A file of `kind`: "qcow2", "raw", "vmdk" (good) or one of CRAFTED. Blocks."""
    path = directory / f"{kind}.img"
    if kind == "raw":
        path.write_bytes(b"\x01cloudd raw disk\n" * 4096)
    elif kind in ("qcow2", "vmdk"):
        _qemu_img("create", "-q", "-f", kind, str(path), "16M")
    elif kind == "qcow2-backing-file":
        _qemu_img("create", "-q", "-f", "qcow2", "-b", HOST_FILE, "-F", "raw", str(path), "1M")
    elif kind == "qcow2-data-file":
        # The data file qemu-img makes here stands for any host file (a disk, a key...).
        _qemu_img("create", "-q", "-f", "qcow2", "-o",
                  f"data_file={directory / 'host-data'},data_file_raw=on", str(path), "1M")
    elif kind == "vmdk-flat-extent":
        path.write_text('# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\n'
                        'createType="monolithicFlat"\n\n# Extent description\n'
                        f'RW 16 FLAT "{HOST_FILE}" 0\n\nddb.virtualHWVersion = "4"\n')
    else:
        raise ValueError(kind)
    return path
