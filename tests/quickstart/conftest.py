"""The cloud of the README's quick start (harness.quickstart), started once per session: the
README test and the tempest run share it."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid as uuid_module
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness.libvirt_host import ROOT, TEST_ROOT, libvirt_host  # noqa: F401 - the fixture
from harness.quickstart import (
    VENV_BIN,
    QuickstartCloud,
    config_api_port,
    delete_leftover_servers,
    quickstart_config,
    remove_networking,
)


@pytest.fixture(scope="session")
def quickstart_cloud(libvirt_host: Path) -> Iterator[QuickstartCloud]:  # noqa: F811
    base = TEST_ROOT / f"quickstart-{uuid_module.uuid4().hex[:8]}"
    state, home = base / "state", base / "home"
    for directory in (TEST_ROOT, base, state, home):
        directory.mkdir(parents=True, exist_ok=True)
        directory.chmod(0o755)  # QEMU (libvirt-qemu) opens disks under the state directory
    config = base / "cloudd.conf"
    config.write_text(quickstart_config(state))
    api_port = config_api_port(config)
    log = (home / "make-run.log").open("ab")
    env = {**os.environ, "HOME": str(home), "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
    # `-o install`: the venv is the one under test; `make run` would otherwise reinstall it.
    process = subprocess.Popen(
        ["make", "-C", str(ROOT), "-o", "install", "run", f"CONFIG={config}",
         f"VENV={VENV_BIN.parent}", f"GUEST_DIR={libvirt_host}"],
        stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    log.close()
    cloud = QuickstartCloud(home, state, config, api_port, process)
    try:
        cloud.wait_ready()
        yield cloud
    finally:
        if cloud.process.poll() is None:
            delete_leftover_servers(cloud)
        cloud.stop()
        remove_networking(state)
        shutil.rmtree(base, ignore_errors=True)
