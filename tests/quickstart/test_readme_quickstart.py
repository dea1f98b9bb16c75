"""The README's quick start, run as written: its shell block (after `<!-- quickstart-steps -->`)
is read from README.md and each line run by bash, as the person would, in the HOME where `make
run`'s bootstrap wrote clouds.yaml. `<address>` and `<floating address>` are filled in from what
the lines before them printed. Each kind of line has a check of what the README says it does;
a line the test does not know, or a step the README lost, fails the test, so README and test
cannot drift apart.

The only change to the commands: `ssh` gets batch-mode options (no host-key prompt, no password
prompt, a test-only known_hosts) and is retried until the guest's SSH server answers.
"""

from __future__ import annotations

import re
import subprocess
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import openstack.config
import openstack.connection
import pytest
from harness.libvirt_host import ROOT, virsh
from harness.quickstart import QuickstartCloud

pytestmark = pytest.mark.slow
README = ROOT / "README.md"
MARKER = "<!-- quickstart-steps -->"
STOP_BOUND = 5.0  # seconds from the accepted stop to SHUTOFF (the bound)
IPV4 = r"\b(?:\d{1,3}\.){3}\d{1,3}\b"


def readme_steps() -> list[str]:
    """The command lines of the README's quick-start block, trailing comments removed."""
    text = README.read_text()
    assert MARKER in text, f"README.md lost its {MARKER} block"
    block = text.split(MARKER, 1)[1].split("```sh\n", 1)[1].split("\n```", 1)[0]
    lines = [re.sub(r"\s{2,}#.*$", "", line).strip() for line in block.splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


@dataclass
class Walk:
    """One person's way through the quick start: their environment and what they have seen."""

    cloud: QuickstartCloud
    env: dict[str, str] = field(default_factory=dict)
    fills: dict[str, str] = field(default_factory=dict)  # placeholder -> value seen
    server_name: str = ""
    timings: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.env = self.cloud.env

    def bash(self, line: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        """The line, placeholders filled in, run by bash in the person's HOME."""
        for placeholder, value in self.fills.items():
            line = line.replace(placeholder, value)
        assert not re.search(r"<[a-z ]+>", line), f"placeholder not filled in: {line}"
        return subprocess.run(["bash", "-c", line], env=self.env, cwd=self.cloud.home,
                              capture_output=True, text=True, timeout=timeout, check=False)

    def run(self, line: str) -> str:
        proc = self.bash(line)
        assert proc.returncode == 0, f"`{line}` exited {proc.returncode}:\n{proc.stdout}\n" \
            f"{proc.stderr}\n--- make run's log:\n{self.cloud.log_tail()}"
        return proc.stdout

    def sdk(self) -> openstack.connection.Connection:
        config = openstack.config.OpenStackConfig(config_files=[str(self.cloud.clouds_yaml)])
        return openstack.connection.Connection(config=config.get_one(cloud=self.env["OS_CLOUD"]))

    def server(self) -> Any:
        return self.sdk().compute.find_server(self.server_name, ignore_missing=True)

    def wait_status(self, status: str, seconds: float, interval: float = 0.1) -> float:
        """Seconds until the server shows ``status`` with no task running."""
        conn, started = self.sdk(), time.monotonic()
        server_id = self.server().id
        while time.monotonic() - started < seconds:
            server = conn.compute.get_server(server_id)
            assert server.status != "ERROR", server.fault
            if server.status == status and not server.task_state:
                return time.monotonic() - started
            time.sleep(interval)
        raise AssertionError(f"{self.server_name} not {status} after {seconds} s: {server.status}")

    def domain_state(self) -> str:
        """libvirt's state of the server's domain, with its reason: `shut off (shutdown)`."""
        return virsh("domstate", "--reason", self.server().instance_name).strip()

    # ----- the kinds of line ---------------------------------------------------------------

    def export(self, line: str) -> None:
        name, value = line.removeprefix("export ").split("=", 1)
        self.env = {**self.env, name: value}
        assert self.cloud.clouds_yaml.exists(), "make run wrote no clouds.yaml"
        assert f"{value}:" in self.cloud.clouds_yaml.read_text()

    def shell(self, line: str) -> None:
        self.run(line)

    def keypair_create(self, line: str) -> None:
        out = self.run(line)
        assert "fingerprint" in out and "mykey" in out, out
        key = self.cloud.home / ".ssh" / "cloudd-key"
        assert key.read_text().startswith("-----BEGIN OPENSSH PRIVATE KEY-----")

    def server_create(self, line: str) -> None:
        self.server_name = line.split()[-1]
        started = time.monotonic()
        out = self.run(line)
        self.timings.append(f"server create --wait: {time.monotonic() - started:.1f} s")
        assert re.search(r"\|\s*status\s*\|\s*ACTIVE", out), out

    def show_addresses(self, line: str) -> None:
        out = self.run(line)
        found = re.findall(IPV4, out)
        assert found, f"no address in:\n{out}"
        self.fills["<address>"] = found[0]

    def ssh(self, line: str, expect: Callable[[str], bool], seconds: float = 180) -> str:
        """The line's ssh, batch-mode, retried until the guest's SSH server lets us in."""
        known_hosts = self.cloud.home / "test-known-hosts"
        line = line.replace("ssh ", "ssh -o BatchMode=yes -o StrictHostKeyChecking=no "
                            f"-o UserKnownHostsFile={known_hosts} -o ConnectTimeout=5 ", 1)
        started = time.monotonic()
        while True:
            proc = self.bash(line, timeout=60)
            if proc.returncode == 0 and expect(proc.stdout):
                self.timings.append(f"ssh answered after {time.monotonic() - started:.1f} s")
                return proc.stdout
            if time.monotonic() - started > seconds:
                break
            time.sleep(2)
        console = self.bash(f"openstack console log show {self.server_name} | tail -30").stdout
        raise AssertionError(f"`{line}` did not give what the README says ({proc.stdout!r}):\n"
                             f"{proc.stderr}\n--- guest console:\n{console}")

    def ssh_fixed(self, line: str) -> None:
        out = self.ssh(line, lambda out: bool(out.strip()))
        assert out.split() == [self.server_name, "hello", "from", "user", "data"], out

    def floating_create(self, line: str) -> None:
        out = self.run(line)
        found = re.search(rf"floating_ip_address\s*\|\s*({IPV4})", out)
        assert found, out
        self.fills["<floating address>"] = found.group(1)

    def ssh_floating(self, line: str) -> None:
        self.ssh(line, lambda out: " up " in out)

    def console_url(self, line: str) -> None:
        out = self.run(line)
        found = re.search(r"(https?://\S+vnc\S*token\S+?)\s*\|", out)
        assert found, out
        with urllib.request.urlopen(found.group(1), timeout=10) as page:  # what a browser loads
            body = page.read().decode(errors="replace")
            assert page.status == 200
        assert "noVNC" in body, body[:500]

    def stop(self, line: str) -> None:
        self.run(line)
        took = self.wait_status("SHUTOFF", 60)
        self.timings.append(f"stop accepted -> SHUTOFF: {took:.2f} s")
        assert took < STOP_BOUND, f"stop took {took:.1f} s (bound {STOP_BOUND} s)"
        state = self.domain_state()
        assert state == "shut off (shutdown)", f"domain {state!r}: not an ACPI shutdown"

    def start(self, line: str) -> None:
        self.run(line)
        took = self.wait_status("ACTIVE", 120)
        self.timings.append(f"start accepted -> ACTIVE: {took:.2f} s")
        assert self.domain_state().startswith("running"), self.domain_state()
        ssh_step = next(s for s in readme_steps() if "<address>" in s and s.startswith("ssh "))
        self.ssh_fixed(ssh_step)  # the same address, the same key, after the reboot

    def delete(self, line: str) -> None:
        domain = self.server().instance_name
        self.run(line)
        assert self.server() is None
        defined = subprocess.run(["virsh", "-c", "qemu:///system", "dominfo", domain],
                                 capture_output=True, text=True, timeout=60, check=False)
        assert defined.returncode != 0, f"domain {domain} still defined after delete"


# Every kind of line the quick start may hold, in the order the README must give them.
STEPS: list[tuple[str, Callable[[Walk, str], None]]] = [
    (r"export OS_CLOUD=\S+$", Walk.export),
    (r"(mkdir|chmod|printf) ", Walk.shell),
    (r"openstack keypair create ", Walk.keypair_create),
    (r"openstack server create ", Walk.server_create),
    (r"openstack server show \S+ -c addresses$", Walk.show_addresses),
    (r"ssh .*@<address> ", Walk.ssh_fixed),
    (r"openstack floating ip create ", Walk.floating_create),
    (r"openstack server add floating ip \S+ <floating address>$", Walk.shell),
    (r"ssh .*@<floating address> ", Walk.ssh_floating),
    (r"openstack console url show ", Walk.console_url),
    (r"openstack server stop ", Walk.stop),
    (r"openstack server start ", Walk.start),
    (r"openstack server delete ", Walk.delete),
]


def plan(lines: list[str]) -> list[tuple[str, Callable[[Walk, str], None]]]:
    """Each README line with its check; fails on a line no check knows or a missing step."""
    planned = []
    for line in lines:
        matches = [check for pattern, check in STEPS if re.match(pattern, line)]
        assert matches, f"README quick-start line this test does not know: {line}"
        planned.append((line, matches[0]))
    missing = [p for p, check in STEPS if check is not Walk.shell and check not in
               {c for _, c in planned}]
    assert not missing, f"README quick start lost the steps {missing}"
    return planned


def test_readme_block_is_complete() -> None:
    """Cheap, no cloud: the block parses and holds every step, in an order that works."""
    steps = [check.__name__ for _, check in plan(readme_steps())]
    assert steps.index("server_create") < steps.index("ssh_fixed") < steps.index("stop")
    assert steps.index("floating_create") < steps.index("ssh_floating")
    assert steps[-1] == "delete"


def test_readme_quickstart(quickstart_cloud: QuickstartCloud, capsys: pytest.CaptureFixture[str]) -> None:
    walk = Walk(quickstart_cloud)
    started = time.monotonic()
    for line, check in plan(readme_steps()):
        step_started = time.monotonic()
        check(walk, line)
        walk.timings.append(f"{time.monotonic() - step_started:6.1f} s  {line}")
    with capsys.disabled():
        print(f"\nREADME quick start: {time.monotonic() - started:.0f} s", *walk.timings, sep="\n  ")

