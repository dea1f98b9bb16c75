"""What an image file really is, checked before anything trusts it (OSSA-2015-014,
CVE-2022-47951, CVE-2024-32498).

A qcow2 header can name a backing file or an external data file, a vmdk descriptor can name
extents anywhere on the host, and one file can parse as two formats: any of these handed to QEMU
or ``qemu-img`` reads or writes host files. Like Nova, Glance and Cinder, cloudd reads the
headers in Python with ``oslo_utils.imageutils.format_inspector`` (their shared inspector), and
refuses a file unless its content is the format the image declares (``disk_format``) and it
passes the inspector's safety checks (no backing file, no data file, no extent outside the file).

``inspect_file`` blocks (it reads the file): call it through ``asyncio.to_thread``, or use
``inspect_image``.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from oslo_utils.imageutils import format_inspector

from cloudd import errors

LOG = logging.getLogger(__name__)

# Glance's disk_format -> the content formats the inspector may find for it. A raw disk with a
# partition table is detected as "gpt" (Nova accepts that for raw). AMI/AKI/ARI are raw bytes
# (a machine disk, a kernel, an initrd); an x86 bzImage kernel starts with a legacy boot sector
# whose signature the GPT inspector also matches. Both open as raw: neither names other files.
ACCEPTED_CONTENT: dict[str, frozenset[str]] = {
    "raw": frozenset({"raw", "gpt"}),
    "ami": frozenset({"raw", "gpt"}),
    "aki": frozenset({"raw", "gpt"}),
    "ari": frozenset({"raw", "gpt"}),
    "qcow2": frozenset({"qcow2"}),
    "vmdk": frozenset({"vmdk"}),
    "vdi": frozenset({"vdi"}),
    "vhd": frozenset({"vhd"}),
    "vhdx": frozenset({"vhdx"}),
    "iso": frozenset({"iso"}),
}

# disk_format -> the name qemu-img's and QEMU's -f take for it: anything raw-like is "raw",
# Glance's vhd is QEMU's "vpc".
QEMU_FORMATS: dict[str, str] = {
    "raw": "raw", "ami": "raw", "aki": "raw", "ari": "raw", "iso": "raw",
    "qcow2": "qcow2", "vmdk": "vmdk", "vdi": "vdi", "vhd": "vpc", "vhdx": "vhdx",
}

# Kernels and ramdisks are handed to QEMU as files (-kernel, -initrd), never as disks: the
# GPT inspector's partition-table checks say nothing about them.
_BOOT_FILES = frozenset({"aki", "ari"})
_READ_SIZE = 64 * 1024


class ImageUnacceptable(errors.BadRequest, ValueError):
    """The file must not be used as an image of its declared disk_format; says why. (A
    ValueError: `cloudd manage image import` reports those as the operator's input errors.)"""


def inspect_file(path: Path | str, disk_format: str | None) -> str:
    """The format qemu must open ``path`` with (see QEMU_FORMATS) if its content is a safe
    ``disk_format`` image; ImageUnacceptable otherwise. Blocks: it reads the file."""
    if not disk_format:
        raise ImageUnacceptable("the image has no disk_format, so its content cannot be checked")
    accepted = ACCEPTED_CONTENT.get(disk_format)
    if accepted is None:
        raise ImageUnacceptable(f"Image format {disk_format!r} is not allowed")
    if Path(path).stat().st_size == 0:
        # No header, so nothing that names another file. The openstack CLI uploads an empty
        # image when its stdin is not a terminal; QEMU opens nothing from one.
        return QEMU_FORMATS[disk_format]
    try:
        found = _detect(Path(path))
        names = {str(inspector) for inspector in found}
        if disk_format == "iso" and names == {"iso", "gpt"}:
            pass  # a hybrid ISO (bootable from a disk too) is the one legitimate double match
        elif len(found) != 1:
            raise ImageUnacceptable(f"Image content is ambiguous: it parses as "
                                    f"{', '.join(sorted(names))}")
        elif not names <= accepted:
            raise ImageUnacceptable(f"Image content ({names.pop()}) does not match its "
                                    f"disk_format {disk_format}")
        if disk_format in _BOOT_FILES and names == {"gpt"}:
            return "raw"  # a bzImage's boot sector: QEMU loads it as a kernel, not as a disk
        for inspector in found:
            inspector.safety_check()
    except format_inspector.SafetyCheckFailed as exc:
        reasons = "; ".join(f"{name}: {failure}" for name, failure in exc.failures.items())
        raise ImageUnacceptable(f"Image does not pass the safety check ({reasons})") from None
    except format_inspector.ImageFormatError as exc:
        raise ImageUnacceptable(f"Image content does not match its disk_format "
                                f"{disk_format}: {exc}") from None
    return QEMU_FORMATS[disk_format]


def _detect(path: Path) -> list[format_inspector.FileInspector]:
    """Every format the content parses as (raw alone when none): the file is read until each
    inspector has decided, or to its end."""
    with path.open("rb") as handle:
        wrapper = format_inspector.InspectWrapper(handle)
        try:
            while wrapper.formats is None:
                if not wrapper.read(_READ_SIZE):
                    break
        finally:
            wrapper.close()  # ends the inspection: undecided inspectors did not match
        found = wrapper.formats
    if not found:
        raise format_inspector.ImageFormatError("Content does not match any allowed format")
    return found


async def inspect_image(path: Path | str, disk_format: str | None) -> str:
    """``inspect_file`` in a worker thread."""
    return await asyncio.to_thread(inspect_file, path, disk_format)
