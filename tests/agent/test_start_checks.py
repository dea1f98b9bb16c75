"""The agent refuses to start on a host where guests cannot work, with one line saying what to
change, and `cloudd manage status` says the same (real libvirtd; the agent is a subprocess)."""
# ruff: noqa: F811 - the fixtures imported from harness.libvirt_host are test parameters here

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid as uuid_module
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness.libvirt_host import TEST_ROOT, libvirt_host  # noqa: F401 - fixtures

from cloudd.agent.hostcheck import instances_path_problem, missing_tools_problem, qemu_user
from cloudd.config import validate

CONF = """[DEFAULT]
host = checked-host
state_dir = {state}

[agent]
controller_url = wss://127.0.0.1:9/agent

[compute]
compute_driver = libvirt

[libvirt]
virt_type = qemu
"""


@pytest.fixture
def locked(libvirt_host: Path) -> Iterator[Path]:
    """<TEST_ROOT>/<id>/locked (0700, as a home directory or a careless mkdir makes it)."""
    base = TEST_ROOT / uuid_module.uuid4().hex[:12]
    path = base / "locked"
    path.mkdir(parents=True)
    for directory in (TEST_ROOT, base):
        directory.chmod(0o755)
    path.chmod(0o700)
    yield path
    shutil.rmtree(base, ignore_errors=True)


def cloudd(conf: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cloudd", "--config", str(conf), *args],
                          capture_output=True, text=True, timeout=120, env=env)


def test_qemus_user_comes_from_qemu_conf(tmp_path: Path) -> None:
    conf = tmp_path / "qemu.conf"
    conf.write_text('#user = "root"\n')
    assert qemu_user(conf) == "libvirt-qemu"
    conf.write_text('#user = "root"\nuser = "qemu-runner"\n')
    assert qemu_user(conf) == "qemu-runner"
    assert qemu_user(tmp_path / "missing.conf") == "libvirt-qemu"
    assert "does not exist on this host" in str(
        instances_path_problem(tmp_path, user="no-such-user-here"))


def test_agent_refuses_an_instances_directory_qemu_cannot_reach(locked: Path) -> None:
    state = locked / "state"
    conf = locked.parent / "agent.conf"
    conf.write_text(CONF.format(state=state))
    expected = (f"the instances directory {state / 'instances'} cannot be reached by libvirt-qemu:"
                f" {locked} is 0700 (root:root); chmod o+x {locked} or set [compute]"
                " instances_path to a directory under /var/lib")

    agent = cloudd(conf, "agent")

    assert agent.returncode == 1
    refusals = [line for line in agent.stderr.splitlines() if "start-up refused" in line]
    assert len(refusals) == 1 and refusals[0].endswith(expected), agent.stderr[-3000:]
    assert "Traceback" not in agent.stderr

    # `cloudd manage status` on this machine (no agent has registered): the same finding.
    assert cloudd(conf, "manage", "db", "sync").returncode == 0
    status = cloudd(conf, "manage", "status", "--no-api")
    assert status.returncode == 1
    assert f"FAIL host checked-host (this machine): {expected}" in status.stdout

    locked.chmod(0o711)  # the fix the message names
    assert instances_path_problem(state / "instances") is None


def test_agent_refuses_a_host_without_its_network_tools(locked: Path) -> None:
    locked.chmod(0o755)
    state = locked / "state"
    conf = locked.parent / "agent.conf"
    conf.write_text(CONF.format(state=state))
    tools = locked / "bin"  # every tool but dnsmasq and dhcp_release
    tools.mkdir()
    for tool in ("iptables", "iptables-restore", "nft"):
        found = shutil.which(tool)
        assert found is not None, f"{tool} is needed on this host"
        (tools / tool).symlink_to(found)
    expected = ("FlatDHCPManager needs dnsmasq, dhcp_release, not found on the PATH: install them"
                " (apt-get install dnsmasq dnsmasq-utils iptables nftables)")
    assert missing_tools_problem(validate({}), str(tools)) == expected

    agent = cloudd(conf, "agent", env={**os.environ, "PATH": str(tools)})

    assert agent.returncode == 1
    assert f"start-up refused: {expected}" in agent.stderr, agent.stderr[-3000:]
    assert cloudd(conf, "manage", "db", "sync").returncode == 0
    status = cloudd(conf, "manage", "status", "--no-api", env={**os.environ, "PATH": str(tools)})
    assert f"FAIL host checked-host (this machine): {expected}" in status.stdout
