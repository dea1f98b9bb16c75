"""Unmodified clients against a running cloud: python-novaclient, openstacksdk, openstack CLI."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import novaclient.client as novaclient
import openstack
from harness.api import ApiCloud as Cloud
from harness.clients import OPENSTACK
from keystoneauth1 import session as ks_session
from keystoneauth1.identity import v3

from cloudd.identity.bootstrap import ensure_project, ensure_role
from cloudd.identity.passwords import hash_password

from .test_quotas import boot_image


def admin_password(tmp_path: Path) -> str:
    return (tmp_path / "admin-password").read_text().strip()


def keystone_session(cloud: Cloud, user: str, password: str, project: str) -> Any:
    auth = v3.Password(auth_url=f"{cloud.base}/identity/v3", username=user, password=password,
                       project_name=project, user_domain_id="default",
                       project_domain_id="default")
    return ks_session.Session(auth=auth)


def wait_until(check: Any, limit: float = 30) -> None:
    deadline = time.monotonic() + limit
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


async def test_novaclient_server_lifecycle(cloud: Cloud, tmp_path: Path) -> None:
    image = await boot_image(cloud)
    nova = novaclient.Client("2.47", session=keystone_session(
        cloud, "admin", admin_password(tmp_path), "admin"))

    def lifecycle() -> dict[str, Any]:
        server = nova.servers.create("nc-vm", image=image, flavor="1", nics="auto")
        wait_until(lambda: nova.servers.get(server.id).status == "ACTIVE")
        listed = [s.name for s in nova.servers.list()]
        shown = nova.servers.get(server.id)
        nova.servers.reboot(server.id, reboot_type="HARD")
        wait_until(lambda: nova.servers.get(server.id).status == "ACTIVE")
        nova.servers.delete(server.id)
        wait_until(lambda: server.id not in [s.id for s in nova.servers.list()])
        return {"listed": listed, "flavor": shown.flavor, "image": shown.image,
                "quota": nova.quotas.get(shown.tenant_id).instances}

    out = await asyncio.to_thread(lifecycle)
    assert out["listed"] == ["nc-vm"]
    assert out["flavor"]["original_name"] == "m1.tiny" and out["image"]["id"] == image
    assert out["quota"] == 10


async def test_openstacksdk_server_lifecycle(cloud: Cloud, tmp_path: Path) -> None:
    image = await boot_image(cloud)

    def lifecycle() -> dict[str, Any]:
        conn = openstack.connect(
            auth_url=f"{cloud.base}/identity", username="admin", password=admin_password(tmp_path),
            project_name="admin", user_domain_name="Default", project_domain_name="Default",
            region_name="RegionOne", load_yaml_config=False, load_envvars=False)
        server = conn.compute.create_server(name="sdk-vm", image_id=image, flavor_id="1",
                                            networks="auto")
        server = conn.compute.wait_for_server(server, wait=30, interval=0.2)
        names = [s.name for s in conn.compute.servers()]
        conn.compute.reboot_server(server, "SOFT")
        wait_until(lambda: conn.compute.get_server(server.id).status == "ACTIVE")
        shown = conn.compute.get_server(server.id)
        conn.compute.delete_server(server)
        conn.compute.wait_for_delete(server, interval=0.2, wait=30)
        return {"status": server.status, "names": names, "name": shown.name}

    out = await asyncio.to_thread(lifecycle)
    assert out == {"status": "ACTIVE", "names": ["sdk-vm"], "name": "sdk-vm"}


async def _reader(cloud: Cloud) -> tuple[str, str]:
    """A user with only the reader role on a new project: (name, project name)."""
    project = f"ro-{uuid.uuid4().hex[:6]}"
    project_id = await ensure_project(cloud.db, project)
    name = f"reader-{uuid.uuid4().hex[:6]}"
    user_id = uuid.uuid4().hex
    await cloud.db.execute(
        "INSERT INTO users (id, name, password_hash, default_project_id, created_at)"
        " VALUES ($1, $2, $3, $4, $5)", user_id, name, hash_password("secret"), project_id,
        time.time())
    await cloud.db.execute(
        "INSERT INTO role_assignments (user_id, project_id, role_id) VALUES ($1, $2, $3)",
        user_id, project_id, await ensure_role(cloud.db, "reader"))
    return name, project


async def test_cli_usage_quota_and_a_reader(cloud: Cloud, tmp_path: Path) -> None:
    image = await boot_image(cloud)
    code, _, _ = await cloud.call("POST", "/compute/v2.1/servers", json={"server": {
        "name": "cli-u", "imageRef": image, "flavorRef": "1"}})
    assert code == 202
    reader, reader_project = await _reader(cloud)
    base_env = {**os.environ, "OS_AUTH_URL": cloud.base + "/identity",
                "OS_USER_DOMAIN_NAME": "Default", "OS_PROJECT_DOMAIN_NAME": "Default",
                "OS_IDENTITY_API_VERSION": "3", "OS_REGION_NAME": "RegionOne"}
    admin_env = {**base_env, "OS_USERNAME": "admin", "OS_PASSWORD": admin_password(tmp_path),
                 "OS_PROJECT_NAME": "admin"}
    reader_env = {**base_env, "OS_USERNAME": reader, "OS_PASSWORD": "secret",
                  "OS_PROJECT_NAME": reader_project}

    def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(OPENSTACK), *args], env=env, capture_output=True, text=True,
                              timeout=120)

    def run_all() -> dict[str, Any]:
        return {
            "usage": run(admin_env, "usage", "list", "-f", "json"),
            "quota": run(admin_env, "quota", "show", "--compute", "-f", "json"),
            "reader_list": run(reader_env, "server", "list", "-f", "json"),
            "reader_create": run(reader_env, "server", "create", "--image", image, "--flavor",
                                 "m1.tiny", "--nic", "none", "ro-vm"),
        }

    out = await asyncio.to_thread(run_all)
    assert out["usage"].returncode == 0, out["usage"].stderr
    usage = json.loads(out["usage"].stdout)
    assert [[s["name"] for s in row["Servers"]] for row in usage] == [["cli-u"]]
    assert out["quota"].returncode == 0, out["quota"].stderr
    quota = json.loads(out["quota"].stdout)
    rows = {row["Resource"]: row["Limit"] for row in quota} if isinstance(quota, list) \
        else {k: v for k, v in quota.items()}
    assert rows["instances"] == 10 and rows["cores"] == 20
    assert out["reader_list"].returncode == 0, out["reader_list"].stderr
    assert json.loads(out["reader_list"].stdout) == []
    assert out["reader_create"].returncode != 0
    assert "403" in out["reader_create"].stderr and "/servers" in out["reader_create"].stderr
