"""tempest, OpenStack's conformance suite, against a running cloudd: a tempest.conf for it, a
run of a selection of tempest's compute API tests, and their results.

The configuration says what cloudd is: Identity v3 only, Compute up to microversion 2.48,
nova-network style networking behind the Network v2.0 subset (tempest makes no networks or
routers of its own: it boots on the cloud's fixed network), Image v2, no volumes or object
storage for tempest (cloudd's S3 is not Swift). Credentials are dynamic: tempest creates a
project and users per test class through the Identity API and removes them afterwards.
"""

from __future__ import annotations

import csv
import io
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

# The tests of the issue: create (and what follows a create: details, lists), addresses,
# stop/start, delete while SHUTOFF, rename; server diagnostics; shelve and unshelve; rescue.
SELECTION = (
    r"^tempest\.api\.compute\.servers\."
    r"(test_create_server\.ServersTestJSON\."
    r"|test_server_addresses\.ServerAddressesTestJSON\."
    r"|test_server_actions\.ServerActionsTestJSON\.test_stop_start_server"
    r"|test_server_actions\.ServerActionsTestOtherB\.test_shelve_(unshelve|paused)_server"
    r"|test_delete_server\.DeleteServersTestJSON\.test_delete_server_while_in_(shutoff|shelved)_state"
    r"|test_servers\.ServersTestJSON\.test_update_server_name"
    r"|test_server_rescue\.ServerRescueTestJSON\.)"
    # diagnostics below 2.48 (the hypervisor's map) and from 2.48 (tempest's strict schema)
    r"|^tempest\.api\.compute\.admin\.test_server_diagnostics\."
)

# What cloudd's compute supports, as tempest's feature flags.
FEATURES: dict[str, object] = {
    "console_output": True, "vnc_console": True, "pause": True, "suspend": True,
    "snapshot": True, "resize": False, "cold_migration": False, "live_migration": False,
    "shelve": True, "rescue": True, "change_password": False, "interface_attach": False,
    "personality": False, "config_drive": False, "metadata_service": True,
    "spice_console": False, "serial_console": False, "disk_config": False,
    "enable_instance_password": True,
}


@dataclass
class CloudFacts:
    """What the tempest.conf needs to know of the cloud."""

    identity_url: str  # .../identity (the auth_url of clouds.yaml)
    admin_password: str
    image_id: str  # the cloudd-guest image
    flavor_id: str  # m1.nano
    network_name: str  # the fixed network servers get without --network
    login_user: str = ""  # set: tempest validates servers over SSH as this user


def tempest_conf(facts: CloudFacts, log_dir: Path) -> str:
    sections: dict[str, dict[str, object]] = {
        "DEFAULT": {"log_dir": log_dir, "log_file": "tempest.log", "debug": True},
        "auth": {"use_dynamic_credentials": True, "create_isolated_networks": False,
                 "admin_username": "admin", "admin_password": facts.admin_password,
                 "admin_project_name": "admin", "admin_domain_name": "Default",
                 "admin_user_domain_name": "Default", "admin_project_domain_name": "Default"},
        "identity": {"uri_v3": facts.identity_url.rstrip("/") + "/v3", "auth_version": "v3",
                     "region": "RegionOne", "v3_endpoint_type": "publicURL"},
        "identity-feature-enabled": {"api_v2": False},
        "compute": {"image_ref": facts.image_id, "image_ref_alt": facts.image_id,
                    "flavor_ref": facts.flavor_id, "flavor_ref_alt": facts.flavor_id,
                    "fixed_network_name": facts.network_name, "build_timeout": 180,
                    "min_microversion": "2.1", "max_microversion": "2.48", "region": "RegionOne"},
        "compute-feature-enabled": FEATURES,
        "validation": {"run_validation": bool(facts.login_user),
                       "image_ssh_user": facts.login_user or "cloudd",
                       "connect_method": "fixed", "network_for_ssh": facts.network_name,
                       "auth_method": "keypair",
                       "ip_version_for_ssh": 4, "ping_timeout": 120, "connect_timeout": 60,
                       "ssh_timeout": 180},
        # neutron: cloudd's Network v2.0 (networks, ports, security groups, floating IPs);
        # tempest's server tests that need a default network are skipped without it. It
        # creates none here (create_isolated_networks off): servers use fixed_network_name.
        "service_available": {"nova": True, "glance": True, "neutron": True, "cinder": False,
                              "swift": False, "placement": False},
        "image": {"region": "RegionOne"},
    }
    lines: list[str] = []
    for name, options in sections.items():
        lines.append(f"[{name}]")
        lines += [f"{key} = {str(value).lower() if isinstance(value, bool) else value}"
                  for key, value in options.items()]
        lines.append("")
    return "\n".join(lines)


@dataclass
class TempestResult:
    passed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    output: str = ""

    def failures(self, workspace: Path, tempest: Path) -> str:
        """The failed tests with their tracebacks (`stestr last`'s failure report)."""
        last = subprocess.run([str(tempest.parent / "stestr"), "last"],
                              cwd=workspace, capture_output=True, text=True, timeout=120,
                              check=False)
        return last.stdout[-20000:] or self.output[-20000:]


def run_tempest(tempest: Path, workspace: Path, conf: str, env: dict[str, str],
                regex: str = SELECTION, timeout: float = 1200) -> TempestResult:
    """`tempest init` a workspace, write its etc/tempest.conf, `tempest run --regex`.
    ``env``: its HOME is where tempest registers the workspace (~/.tempest)."""
    if not (workspace / ".stestr.conf").exists():
        subprocess.run([str(tempest), "init", str(workspace)], env=env, check=True,
                       capture_output=True, text=True, timeout=120)
    (workspace / "etc" / "tempest.conf").write_text(conf)
    proc = subprocess.run([str(tempest), "run", "--regex", regex, "--concurrency", "1"],
                          cwd=workspace, env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)
    result = TempestResult(output=proc.stdout + proc.stderr)
    for test_id, status in _last_run(tempest.parent, workspace):
        name = re.sub(r"\[[^\]]*\]$", "", test_id)  # tempest's "[id-...,smoke]" tags
        {"success": result.passed, "skip": result.skipped}.get(status, result.failed).append(name)
    if proc.returncode != 0 and not result.failed:
        result.failed.append(f"tempest run exited {proc.returncode}:\n{result.output[-3000:]}")
    return result


def _last_run(bin_dir: Path, workspace: Path) -> list[tuple[str, str]]:
    """(test id, status) of the workspace's last run, from stestr's subunit stream; a class
    whose set-up failed is one test `setUpClass (tempest....Class)` with status `fail`."""
    stream = subprocess.run([str(bin_dir / "stestr"), "last", "--subunit"], cwd=workspace,
                            capture_output=True, timeout=120, check=False).stdout
    table = subprocess.run([str(bin_dir / "subunit2csv")], input=stream, capture_output=True,
                           timeout=120, check=False).stdout.decode()
    return [(row["test"], row["status"]) for row in csv.DictReader(io.StringIO(table))]
