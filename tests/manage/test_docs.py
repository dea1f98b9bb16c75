"""The generated configuration reference is current, and the docs name what the code offers."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_configuration_reference_is_current() -> None:
    # Stale after a change to cloudd/config/models.py: run scripts/gen-config-doc.py.
    result = subprocess.run([sys.executable, "scripts/gen-config-doc.py", "--check"], cwd=REPO,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def test_every_manage_command_is_documented() -> None:
    from cloudd.cli import main  # noqa: F401  # the parser the operator sees

    operations = (REPO / "docs" / "operations.md").read_text()
    for command in ("service list", "service disable", "host enroll", "host remove", "flavor create",
                    "quota set", "network create", "floating create", "image import", "status",
                    "db sync"):
        assert f"cloudd manage {command}" in operations, command
