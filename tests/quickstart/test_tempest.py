"""tempest's compute API server tests against the quick start's cloud (a real `make run`, the
libvirt driver, real networking): create, list addresses, stop/start, delete while SHUTOFF,
rename, server diagnostics, shelve and unshelve, rescue. tempest makes its own projects and users
through cloudd's Identity API (dynamic credentials) and boots servers from the cloudd-guest
image with m1.nano."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from harness.quickstart import QuickstartCloud

from .tempest_run import CloudFacts, run_tempest, tempest_conf

pytestmark = pytest.mark.slow
TEMPEST = Path(sys.executable).parent / "tempest"
# The guest's SSH user (docs/guest.md): tempest logs in to check what it booted (validation).
LOGIN_USER = "cloudd"


def openstack(cloud: QuickstartCloud, *args: str) -> object:
    proc = subprocess.run(["openstack", "--os-cloud", "cloudd", *args, "-f", "json"],
                          env=cloud.env, capture_output=True, text=True, timeout=120, check=True)
    return json.loads(proc.stdout)


def cloud_facts(cloud: QuickstartCloud) -> CloudFacts:
    image = openstack(cloud, "image", "show", "cloudd-guest")
    flavor = openstack(cloud, "flavor", "show", "m1.nano")
    networks = openstack(cloud, "network", "list", "--internal")
    assert isinstance(image, dict) and isinstance(flavor, dict) and isinstance(networks, list)
    entry = yaml.safe_load(cloud.clouds_yaml.read_text())["clouds"]["cloudd"]["auth"]
    return CloudFacts(identity_url=entry["auth_url"], admin_password=entry["password"],
                      image_id=image["id"], flavor_id=flavor["id"],
                      network_name=networks[0]["Name"] if networks else "",
                      login_user=LOGIN_USER)


def test_tempest_compute_servers(quickstart_cloud: QuickstartCloud,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    assert TEMPEST.exists(), "tempest is not installed (the `test` extra of pyproject.toml)"
    facts = cloud_facts(quickstart_cloud)
    workspace = quickstart_cloud.home / "tempest"
    started = time.monotonic()
    result = run_tempest(TEMPEST, workspace, tempest_conf(facts, workspace / "logs"),
                         quickstart_cloud.env)
    with capsys.disabled():
        print(f"\ntempest: {len(result.passed)} passed, {len(result.skipped)} skipped,"
              f" {len(result.failed)} failed in {time.monotonic() - started:.0f} s",
              *[f"ok       {name}" for name in result.passed],
              *[f"SKIPPED  {name}" for name in result.skipped],
              *[f"FAILED   {name}" for name in result.failed], sep="\n  ")
    assert result.passed, f"tempest ran no test:\n{result.output[-5000:]}"
    assert not result.failed, "tempest failures:\n  " + "\n  ".join(result.failed) + \
        "\n\n" + result.failures(workspace, TEMPEST)
