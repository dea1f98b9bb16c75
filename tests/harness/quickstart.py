"""The cloud of the README's quick start, started the way a person starts it: `make run` (its
`install` step taken as done, since the venv under test is already installed) with the
project's own config/cloudd.conf, changed only where a test must differ: a fresh state directory
QEMU's user can traverse, free ports, and a HOME of its own, where bootstrap writes the
clouds.yaml the README's `openstack` commands use and `keypair create` writes the private key.

Real parts: the libvirt driver with QEMU guests, and the network agent's bridges, dnsmasq and
iptables."""

from __future__ import annotations

import configparser
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from .config import free_port
from .libvirt_host import ROOT

VENV_BIN = Path(sys.executable).parent
MAKE_RUN_CONFIG = ROOT / "config" / "cloudd.conf"


def quickstart_config(state: Path) -> str:
    """config/cloudd.conf with a state directory and ports of this test's own."""
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(MAKE_RUN_CONFIG)
    rpc_port = free_port()
    overrides = {
        "DEFAULT": {"state_dir": str(state)},
        "api": {"port": str(free_port())},
        "rpc": {"port": str(rpc_port), "enroll_port": str(free_port())},
        "agent": {"controller_url": f"wss://127.0.0.1:{rpc_port}/agent"},
        "network": {"metadata_port": str(free_port()), "metadata_proxy_port": str(free_port())},
        "vnc": {"novncproxy_port": str(free_port())},
        "objectstore": {"port": "0"},
        "ec2": {"port": "0"},
    }
    for section, options in overrides.items():
        if section != "DEFAULT" and not parser.has_section(section):
            parser.add_section(section)
        for key, value in options.items():
            parser.set(section, key, value)
    lines: list[str] = []
    for section in ["DEFAULT", *parser.sections()]:
        items = parser.defaults() if section == "DEFAULT" else {
            k: v for k, v in parser.items(section, raw=True) if k not in parser.defaults()}
        lines += [f"[{section}]", *(f"{k} = {v}" for k, v in items.items()), ""]
    return "\n".join(lines)


@dataclass
class QuickstartCloud:
    """A running `make run` cloud and the environment of the person using it."""

    home: Path  # HOME of the README's commands: clouds.yaml, ~/.ssh/cloudd-key, user-data.sh
    state: Path
    config: Path
    api_port: int
    process: subprocess.Popen[bytes]  # `make run` (its own process group)

    @property
    def env(self) -> dict[str, str]:
        """What a shell of the person has: the venv's `openstack` first on PATH, their HOME."""
        return {**os.environ, "HOME": str(self.home),
                "PATH": f"{VENV_BIN}:{os.environ.get('PATH', '/usr/bin:/bin')}"}

    @property
    def clouds_yaml(self) -> Path:
        return self.home / ".config" / "openstack" / "clouds.yaml"

    def log_tail(self, lines: int = 60) -> str:
        path = self.home / "make-run.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def healthz(self) -> dict[str, object] | None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.api_port}/healthz", timeout=2) as r:
                return dict(json.loads(r.read()))
        except (OSError, urllib.error.URLError, ValueError):
            return None

    def wait_ready(self, seconds: float = 900) -> None:
        """Until the API answers and the local agent's compute service is up (the first run
        may install libvirt and build the guest: minutes)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"make run ended:\n{self.log_tail()}"
            report = self.healthz()
            if report and report.get("status") == "ok" and self.compute_up():
                return
            time.sleep(1)
        raise AssertionError(f"the cloud did not come up:\n{self.log_tail()}")

    def compute_up(self) -> bool:
        proc = subprocess.run(
            ["openstack", "--os-cloud", "cloudd", "compute", "service", "list", "-f", "json"],
            env=self.env, capture_output=True, text=True, timeout=120, check=False)
        if proc.returncode != 0:
            return False
        return any(s["Binary"].endswith("compute") and s["State"] == "up"
                   for s in json.loads(proc.stdout))

    def stop(self) -> None:
        """SIGTERM to `make run`'s process group (the all-in-one it exec'd is in it)."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)


def remove_networking(state: Path) -> None:
    """The dnsmasq processes and bridges this cloud's agent made (Nova's way: an agent that
    stops leaves them, so guests keep their network)."""
    for pid_file in (state / "networks").glob("nova-*.pid"):
        bridge = pid_file.name.removeprefix("nova-").removesuffix(".pid")
        with contextlib.suppress(OSError, ValueError):
            pid = int(pid_file.read_text().strip())
            if str(state).encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
                os.kill(pid, signal.SIGTERM)
        subprocess.run(["ip", "link", "del", bridge], capture_output=True, timeout=30, check=False)


def delete_leftover_servers(cloud: QuickstartCloud) -> None:
    listed = subprocess.run(
        ["openstack", "--os-cloud", "cloudd", "server", "list", "--all-projects", "-f", "value",
         "-c", "ID"], env=cloud.env, capture_output=True, text=True, timeout=120, check=False)
    ids = listed.stdout.split()
    if ids:
        subprocess.run(["openstack", "--os-cloud", "cloudd", "server", "delete", "--wait", *ids],
                       env=cloud.env, capture_output=True, timeout=300, check=False)


def config_api_port(config: Path) -> int:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(config)
    return parser.getint("api", "port")
