"""The inspector on files the real qemu-img makes: each format is accepted as itself (and told
to qemu by its qemu name), refused as anything else; files naming host files are refused."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from crafted_images import CRAFTED, make_image

from cloudd.image.inspector import QEMU_FORMATS, ImageUnacceptable, inspect_file

# Glance's disk_format -> qemu-img's name for making one.
MADE_BY_QEMU_IMG = {"qcow2": "qcow2", "vmdk": "vmdk", "vdi": "vdi", "vhd": "vpc", "vhdx": "vhdx"}


@pytest.mark.parametrize("disk_format", sorted(MADE_BY_QEMU_IMG))
def test_each_format_is_itself_and_nothing_else(tmp_path: Path, disk_format: str) -> None:
    path = tmp_path / f"disk.{disk_format}"
    subprocess.run(["qemu-img", "create", "-q", "-f", MADE_BY_QEMU_IMG[disk_format], str(path),
                    "16M"], check=True, timeout=60)
    assert inspect_file(path, disk_format) == QEMU_FORMATS[disk_format]
    for other in ("raw", "ami", "aki", "ari", "iso", *MADE_BY_QEMU_IMG):
        if other != disk_format:
            with pytest.raises(ImageUnacceptable, match="does not match"):
                inspect_file(path, other)


@pytest.mark.parametrize("kind", sorted(CRAFTED))
def test_crafted_files_are_refused_whatever_is_declared(tmp_path: Path, kind: str) -> None:
    path = make_image(kind, tmp_path)
    for declared in ("raw", "qcow2", "vmdk", "ami", "iso"):
        with pytest.raises(ImageUnacceptable):
            inspect_file(path, declared)


def test_raw_kernels_and_unknown_formats(tmp_path: Path) -> None:
    raw = make_image("raw", tmp_path)
    for declared in ("raw", "ami", "aki", "ari"):
        assert inspect_file(raw, declared) == "raw"
    unknown: tuple[str | None, ...] = (None, "", "ploop", "floppy")
    for unknown_format in unknown:
        with pytest.raises(ImageUnacceptable):
            inspect_file(raw, unknown_format)
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    assert inspect_file(empty, "qcow2") == "qcow2"  # no header: nothing to follow


def test_a_bzimage_kernel_is_an_aki_but_not_a_disk(tmp_path: Path) -> None:
    """An x86 bzImage starts with a legacy boot sector (0x55AA) that the GPT inspector matches
    and its MBR checks refuse; as a kernel (aki) it is fine, as a disk it is not raw enough."""
    kernel = tmp_path / "vmlinuz"
    sector = bytearray(4096)
    sector[0x1BE + 4] = 0xEE  # a protective-MBR partition type, as in a bzImage's boot code
    sector[0x1BE] = 0x42  # not a valid boot flag: the MBR safety check fails
    sector[510:512] = b"\x55\xaa"
    kernel.write_bytes(bytes(sector) + b"HdrS" + bytes(8192))
    assert inspect_file(kernel, "aki") == "raw"
    with pytest.raises(ImageUnacceptable, match="safety check"):
        inspect_file(kernel, "raw")
