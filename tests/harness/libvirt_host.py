"""Fixtures for tests on real libvirt/QEMU guests: host set-up through the project's own scripts,
the cached test guest, and an instances directory QEMU's user can traverse."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid as uuid_module
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest

from . import cloud, requires

ROOT = Path(__file__).resolve().parents[2]
GUEST_DIR = Path(os.environ.get("CLOUDD_GUEST_DIR", "/var/cache/cloudd/guest"))
READY_LINE = "cloudd-guest ready"
# Not under pytest's tmp_path: that is 0700, and QEMU runs as libvirt-qemu.
TEST_ROOT = Path("/var/lib/cloudd-test")


def _run(*command: str) -> None:
    subprocess.run(command, cwd=ROOT, check=True, timeout=900)


@pytest.fixture(scope="session")
def libvirt_host() -> Path:
    """Install and start libvirt and build the guest, as `make run` would; the guest's dir."""
    requires.root("a real QEMU guest (libvirt's qemu:///system)")
    _run("bash", "scripts/install-libvirt.sh")
    requires.installed("qemu-system-x86_64", "scripts/install-libvirt.sh")
    _run("bash", "scripts/start-libvirt.sh")
    _run("bash", "scripts/build-guest-image.sh", str(GUEST_DIR))
    return GUEST_DIR


@pytest.fixture
def instances_path(libvirt_host: Path) -> Iterator[Path]:
    path = TEST_ROOT / uuid_module.uuid4().hex[:12] / "instances"
    path.mkdir(parents=True)
    for directory in (TEST_ROOT, path.parent):
        directory.chmod(0o755)
    yield path
    shutil.rmtree(path.parent, ignore_errors=True)


def virsh(*args: str) -> str:
    result = subprocess.run(["virsh", "-q", "-c", "qemu:///system", *args],
                            capture_output=True, text=True, timeout=60, check=True)
    return result.stdout


async def wait_for(predicate: Callable[[], Awaitable[bool]], seconds: float, what: str,
                   interval: float = 0.3) -> None:
    """Poll ``await predicate()`` until it is true; fail with ``what`` after ``seconds`` (every
    0.3 s by default: the predicates here ask virsh)."""
    await cloud.wait_for(predicate, seconds, what, interval)
