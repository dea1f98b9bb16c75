"""The unmodified OpenStack command-line client against a cloud under test."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .api import ApiCloud

# The CLI installed beside this Python (the project's venv), else one on PATH. It is a test
# dependency (pyproject.toml): missing, running it is an error that names the venv's path.
_VENV_CLI = Path(sys.executable).parent / "openstack"
OPENSTACK = str(_VENV_CLI) if _VENV_CLI.exists() else shutil.which("openstack") or str(_VENV_CLI)


def openstack_cli(cloud: ApiCloud, tmp_path: Path) -> Callable[..., Any]:
    """`run(*args)` runs the unmodified openstack CLI as admin (bootstrap wrote the admin's
    password into tmp_path); JSON output parsed when asked and not empty."""
    password = (tmp_path / "admin-password").read_text().strip()
    env = {**os.environ, "OS_AUTH_URL": cloud.base + "/identity", "OS_USERNAME": "admin",
           "OS_PASSWORD": password, "OS_PROJECT_NAME": "admin", "OS_USER_DOMAIN_NAME": "Default",
           "OS_PROJECT_DOMAIN_NAME": "Default", "OS_IDENTITY_API_VERSION": "3",
           "OS_REGION_NAME": "RegionOne", "OS_INTERFACE": "public"}

    def run(*args: str, json_out: bool = True) -> Any:
        command = [str(OPENSTACK), *args, *(["-f", "json"] if json_out else [])]
        proc = subprocess.run(command, env=env, capture_output=True, text=True, timeout=180)
        assert proc.returncode == 0, (args, proc.stderr)
        return json.loads(proc.stdout) if json_out and proc.stdout.strip() else proc.stdout

    return run
