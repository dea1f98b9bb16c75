"""The files of one libvirt guest: ``<instances_path>/<uuid>/`` (Nova's layout).

``disk`` (qcow2 over the cached base), ``disk.eph0``, ``kernel``, ``ramdisk``, ``console.log``,
``domain.xml`` and ``cloudd.json`` (the GuestSpec and the base images it uses, so that rebuild,
resize and the image cache work after an agent restart). During a resize the old directory is
kept as ``<uuid>_resize`` until confirm or revert; during a rescue the rescue image's files
(its disk, kernel, ramdisk, the rescue domain's XML and record) are in ``<uuid>/rescue``.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from cloudd.agent.compute.drivers.base import GuestSpec

RESIZE_SUFFIX = "_resize"
RESCUE_DIR = "rescue"


class InstanceFiles:
    def __init__(self, instances_path: Path, uuid: str, suffix: str = "") -> None:
        self.dir = instances_path / (uuid + suffix)

    @property
    def disk(self) -> Path:
        return self.dir / "disk"

    @property
    def ephemeral(self) -> Path:
        return self.dir / "disk.eph0"

    @property
    def kernel(self) -> Path:
        return self.dir / "kernel"

    @property
    def ramdisk(self) -> Path:
        return self.dir / "ramdisk"

    @property
    def console_log(self) -> Path:
        return self.dir / "console.log"

    @property
    def domain_xml(self) -> Path:
        return self.dir / "domain.xml"

    @property
    def record(self) -> Path:
        return self.dir / "cloudd.json"

    def rescue_files(self) -> InstanceFiles:
        """The rescue image's files, inside the guest's directory (gone with it)."""
        return InstanceFiles(self.dir, RESCUE_DIR)

    # The methods below block: call them through asyncio.to_thread.

    def create_dir(self) -> None:
        # libvirt-qemu (QEMU's user) must traverse every directory on the way to the disks.
        self.dir.mkdir(parents=True, exist_ok=True)
        for directory in (self.dir, self.dir.parent):
            os.chmod(directory, 0o755)

    def save(self, spec: GuestSpec, base_ids: list[str]) -> None:
        record = {"spec": spec.model_dump(mode="json"), "bases": sorted(set(base_ids))}
        self.record.write_text(json.dumps(record))

    def load_spec(self) -> GuestSpec | None:
        try:
            return GuestSpec.model_validate(json.loads(self.record.read_text())["spec"])
        except FileNotFoundError:
            return None

    def remove(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


def bases_in_use(instances_path: Path) -> set[str]:
    """Every base image id some instance directory (resize leftovers included) refers to."""
    in_use: set[str] = set()
    if not instances_path.is_dir():
        return in_use
    records = [*instances_path.glob("*/cloudd.json"),
               *instances_path.glob(f"*/{RESCUE_DIR}/cloudd.json")]
    for record in records:
        try:
            in_use.update(json.loads(record.read_text()).get("bases", []))
        except (OSError, ValueError):
            continue  # a directory being removed right now
    return in_use


def read_tail(path: Path, max_bytes: int) -> str:
    """The last ``max_bytes`` of a console log (Nova caps console output the same way)."""
    try:
        with path.open("rb") as log:
            log.seek(max(0, log.seek(0, os.SEEK_END) - max_bytes))
            return log.read().decode(errors="replace")
    except FileNotFoundError:
        return ""
