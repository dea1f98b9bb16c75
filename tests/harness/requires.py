"""The real parts a test needs, which `make test` installs (`make install` runs the scripts named
here) and starts: when one is missing the test FAILS, naming the part and the script, instead of
skipping. A skipped real-part test would let a regression in that part land unseen; the guard in
tests/conftest.py fails the run on any skip that does get through."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest


def missing(part: str, script: str) -> None:
    """Fail the running test: ``part`` is not there, and ``script`` installs or enables it."""
    pytest.fail(f"{part} is missing: {script} installs it (`make install` runs it)", pytrace=False)


def installed(tool: str, script: str) -> str:
    """The path of the command ``tool``; the test fails, naming ``script``, if it is not found."""
    path = shutil.which(tool)
    if path is None:
        missing(f"the command {tool!r}", script)
    assert path is not None  # missing() does not return
    return path


def root(why: str) -> None:
    """Fail the test unless it runs as root; `make test` runs as root on the CI machine."""
    if os.geteuid() != 0:
        pytest.fail(f"{why} needs root: run the suite as root (`make test`)", pytrace=False)


def tmpfs(path: Path, size: str) -> None:
    """Mount a tmpfs of ``size`` on ``path`` (a real small filesystem); needs root."""
    root("mounting a small tmpfs")
    mount = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                           capture_output=True, text=True, check=False)
    if mount.returncode != 0:
        pytest.fail(f"cannot mount a tmpfs on {path}: {mount.stderr.strip()}", pytrace=False)
