"""A controller and two agents on separate network namespaces, set up as docs/multi-host.md says.

The root namespace holds a bridge (the "lab switch") where the controller listens; each agent
host is a namespace with its own veth address on that bridge, its own host name, availability
zone and state directory, and the fake driver. Servers are booted on both through the REST API
(one per zone), `cloudd manage status` reports both hosts healthy, then names the host whose
agent was stopped.
"""

from __future__ import annotations

import configparser
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from harness import requires

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def _namespace_host() -> None:
    """Each host of the deployment is a network namespace: root and iproute2, or a failure."""
    requires.root("network namespaces")
    requires.installed("ip", "scripts/install-deps.sh")


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=30)


@dataclass
class Lab:
    """The bridge and namespaces of one test run (random names and /24), removed afterwards."""

    suffix: str = field(default_factory=lambda: secrets.token_hex(2))
    octet: int = field(default_factory=lambda: 100 + secrets.randbelow(150))
    namespaces: list[str] = field(default_factory=list)

    @property
    def bridge(self) -> str:
        return f"cldbr{self.suffix}"

    def address(self, last: int) -> str:
        return f"10.254.{self.octet}.{last}"

    def create(self) -> None:
        ip("link", "add", self.bridge, "type", "bridge")
        ip("addr", "add", f"{self.address(1)}/24", "dev", self.bridge)
        ip("link", "set", self.bridge, "up")

    def add_host(self, letter: str, last: int) -> str:
        ns, outside, inside = f"cld{self.suffix}{letter}", f"cv{self.suffix}{letter}", "eth0"
        ip("netns", "add", ns)
        self.namespaces.append(ns)
        ip("link", "add", outside, "type", "veth", "peer", "name", f"cvi{self.suffix}{letter}")
        ip("link", "set", f"cvi{self.suffix}{letter}", "netns", ns)
        ip("-n", ns, "link", "set", f"cvi{self.suffix}{letter}", "name", inside)
        ip("-n", ns, "addr", "add", f"{self.address(last)}/24", "dev", inside)
        ip("-n", ns, "link", "set", inside, "up")
        ip("-n", ns, "link", "set", "lo", "up")
        ip("link", "set", outside, "master", self.bridge)
        ip("link", "set", outside, "up")
        return ns

    def destroy(self) -> None:
        for ns in self.namespaces:  # deleting a namespace deletes its end of the veth pair too
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=30)
        subprocess.run(["ip", "link", "del", self.bridge], capture_output=True, timeout=30)


def free_port(address: str) -> int:
    with socket.socket() as sock:
        sock.bind((address, 0))
        return int(sock.getsockname()[1])


def role_config(example: str, path: Path, overrides: dict[str, dict[str, str]]) -> Path:
    """The role's example config from config/, with this lab's values."""
    parser = configparser.ConfigParser(interpolation=None, default_section="\x00")
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(REPO / "config" / example)
    for section, values in overrides.items():
        if not parser.has_section(section):
            parser.add_section(section)
        for key, value in values.items():
            parser.set(section, key, value)
    with path.open("w") as fh:
        parser.write(fh)
    return path


def cloudd(*args: str, ns: str | None = None) -> list[str]:
    prefix = ["ip", "netns", "exec", ns] if ns else []
    return [*prefix, sys.executable, "-m", "cloudd", *args]


def http(method: str, url: str, body: Any = None, token: str = "") -> tuple[int, Any, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers={
        "Content-Type": "application/json", "X-Auth-Token": token})
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            raw = resp.read()
            return resp.status, json.loads(raw) if raw else None, resp.headers
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(), exc.headers


def wait_until(what: str, check: Any, limit: float = 30) -> Any:
    deadline = time.monotonic() + limit
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}: {last}")


@pytest.fixture
def lab() -> Iterator[Lab]:
    lab = Lab()
    try:
        lab.create()
        yield lab
    finally:
        lab.destroy()


def test_two_agent_hosts_in_namespaces(lab: Lab, tmp_path: Path) -> None:
    ctl_ip = lab.address(1)
    api_port, rpc_port, enroll_port = free_port(ctl_ip), free_port(ctl_ip), free_port(ctl_ip)
    service = {"report_interval": "1", "service_down_time": "4"}
    ctl_conf = role_config("controller.conf.example", tmp_path / "controller.conf", {
        "DEFAULT": {"my_ip": ctl_ip, "state_dir": str(tmp_path / "ctl"),
                    "log_file": str(tmp_path / "controller.log"), "host": "lab-ctl"},
        "api": {"listen": ctl_ip, "port": str(api_port)},
        "rpc": {"listen": ctl_ip, "port": str(rpc_port), "enroll_port": str(enroll_port)},
        "service": service,
        "objectstore": {"listen": ctl_ip, "port": "0"},
        "network": {"metadata_listen": ctl_ip, "metadata_port": "0"},
    })
    procs: list[subprocess.Popen[bytes]] = []
    logs = []

    def start(name: str, argv: list[str]) -> subprocess.Popen[bytes]:
        log = (tmp_path / f"{name}.out").open("wb")
        logs.append(log)
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd=REPO)
        procs.append(proc)
        return proc

    def status() -> tuple[int, str]:
        out = subprocess.run(cloudd("--config", str(ctl_conf), "manage", "status"),
                             capture_output=True, text=True, timeout=60, cwd=REPO)
        return out.returncode, out.stdout + out.stderr

    try:
        subprocess.run(cloudd("--config", str(ctl_conf), "manage", "bootstrap", "--clouds-yaml",
                              str(tmp_path / "clouds.yaml")), check=True, capture_output=True,
                       timeout=60, cwd=REPO)
        (tmp_path / "tiny.img").write_bytes(b"\0" * 65536)
        imported = subprocess.run(cloudd("--config", str(ctl_conf), "manage", "image", "import",
                                         str(tmp_path / "tiny.img"), "--name", "tiny",
                                         "--disk-format", "raw"),
                                  check=True, capture_output=True, text=True, timeout=60, cwd=REPO)
        image_id = imported.stdout.split("id ")[1].split(",")[0]
        assert "100%" in imported.stderr  # the progress bar
        start("controller", cloudd("--config", str(ctl_conf), "serve"))
        base = f"http://{ctl_ip}:{api_port}"
        wait_until("the controller", lambda: _answers(base + "/healthz"))

        agents = {}
        for letter, last in (("a", 11), ("b", 12)):
            ns = lab.add_host(letter, last)
            enrolled = subprocess.run(cloudd("--config", str(ctl_conf), "manage", "host", "enroll",
                                             f"lab-{letter}"),
                                      check=True, capture_output=True, text=True, timeout=60, cwd=REPO)
            conf = role_config("agent.conf.example", tmp_path / f"agent-{letter}.conf", {
                "DEFAULT": {"host": f"lab-{letter}", "my_ip": lab.address(last),
                            "state_dir": str(tmp_path / f"agent-{letter}"),
                            "log_file": str(tmp_path / f"agent-{letter}.log")},
                "agent": {"controller_url": f"wss://{ctl_ip}:{rpc_port}/agent",
                          "availability_zone": f"zone-{letter}"},
                "rpc": {"enroll_port": str(enroll_port)},
                "cert": {"join_token": enrolled.stdout.split()[-1]},
                "service": service,
                "compute": {"compute_driver": "fake"},
            })
            agents[letter] = start(f"agent-{letter}", cloudd("--config", str(conf), "agent", ns=ns))

        # An agent's link is counted as it connects; its service row is written by the
        # registration that follows, so wait for both.
        _, out = wait_until("both hosts healthy", lambda: (r := status())[0] == 0
                            and "agents connected: lab-a, lab-b" in r[1]
                            and "cloudd-compute on lab-b: up" in r[1]
                            and "cloudd-compute on lab-a: up" in r[1] and r)
        assert "cloudd-compute on lab-a: up" in out and "cloudd-compute on lab-b: up" in out
        assert "agents connected: lab-a, lab-b" in out
        assert "OK   host lab-a: fake driver" in out and "OK   host lab-b: fake driver" in out

        token = _admin_token(base, (tmp_path / "ctl" / "admin-password").read_text().strip())
        for letter in ("a", "b"):
            server = _boot(base, token, f"zone-{letter}", image_id)
            assert server["OS-EXT-SRV-ATTR:host"] == f"lab-{letter}"
            assert server["OS-EXT-AZ:availability_zone"] == f"zone-{letter}"

        agents["b"].send_signal(signal.SIGTERM)
        assert agents["b"].wait(timeout=30) == 0
        # Its agent's link is gone at once; its heartbeat is late a few seconds later.
        _, out = wait_until("lab-b reported down", lambda: (r := status())[0] == 1
                            and "FAIL cloudd-compute on lab-b" in r[1] and r)
        assert "FAIL cloudd-compute on lab-b: down: last heartbeat" in out
        assert "FAIL host lab-b: agent not connected to the controller" in out
        assert "start the agent on lab-b" in out
        assert "OK   cloudd-compute on lab-a: up" in out
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
        for log in logs:
            log.close()
        stop_dnsmasqs(tmp_path)


def stop_dnsmasqs(tmp_path: Path) -> None:
    """The agents' dnsmasqs outlive them (as nova-network's did, so guests keep their leases);
    the namespaces they served are gone with the lab, the processes are not."""
    for pid_file in tmp_path.glob("agent-*/networks/*.pid"):
        try:
            os.kill(int(pid_file.read_text().strip()), signal.SIGTERM)
        except (OSError, ValueError):
            pass


def _answers(url: str) -> bool:
    try:
        return http("GET", url)[0] == 200
    except (urllib.error.URLError, OSError):
        return False


def _admin_token(base: str, password: str) -> str:
    code, _, headers = http("POST", base + "/identity/v3/auth/tokens", {"auth": {
        "identity": {"methods": ["password"], "password": {"user": {
            "name": "admin", "domain": {"id": "default"}, "password": password}}},
        "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}}})
    assert code == 201
    return str(headers["X-Subject-Token"])


def _boot(base: str, token: str, zone: str, image_id: str) -> dict[str, Any]:
    code, body, _ = http("POST", base + "/compute/v2.1/servers", {"server": {
        "name": f"vm-{zone}", "imageRef": image_id, "flavorRef": "1",
        "availability_zone": zone}}, token)
    assert code == 202, body
    url = f"{base}/compute/v2.1/servers/{body['server']['id']}"

    def active() -> dict[str, Any] | None:
        server = http("GET", url, token=token)[1]["server"]
        assert server["status"] != "ERROR", server
        return server if server["status"] == "ACTIVE" else None

    return dict(wait_until(f"a server in {zone}", active))
