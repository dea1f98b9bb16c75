"""The real `openstack` client against a served identity API: token, project, user, role, ec2."""

from __future__ import annotations

import asyncio
import json
import os
from typing import Any

import pytest
from harness.api import ApiCloud as Cloud
from harness.clients import OPENSTACK

pytestmark = pytest.mark.slow


async def openstack(cloud: Cloud, *args: str, user: str = "admin", password: str = "",
                    project: str = "admin") -> Any:
    env = {key: value for key, value in os.environ.items() if not key.startswith("OS_")}
    env.update(OS_AUTH_URL=f"{cloud.base}/identity", OS_USERNAME=user,
               OS_PASSWORD=password or cloud.admin["password"], OS_PROJECT_NAME=project,
               OS_USER_DOMAIN_NAME="Default", OS_PROJECT_DOMAIN_NAME="Default",
               OS_IDENTITY_API_VERSION="3", OS_REGION_NAME="RegionOne", OS_INTERFACE="public")
    proc = await asyncio.create_subprocess_exec(
        OPENSTACK, *args, env=env, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode == 0, f"openstack {' '.join(args)} failed:\n{err.decode()}"
    text = out.decode()
    return json.loads(text) if "-f" in args and text.strip() else text


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_openstack_cli_identity_workflow(cloud: Cloud) -> None:
    token = await openstack(cloud, "token", "issue", "-f", "json")
    assert token["project_id"] == cloud.admin["project_id"]
    assert token["user_id"] == cloud.admin["user_id"]

    project = await openstack(cloud, "project", "create", "cliproj", "-f", "json")
    assert project["name"] == "cliproj" and project["domain_id"] == "default"
    user = await openstack(cloud, "user", "create", "--password", "cli-pw", "cliuser",
                           "-f", "json")
    assert user["name"] == "cliuser"
    await openstack(cloud, "role", "add", "--project", "cliproj", "--user", "cliuser", "member")
    assignments = await openstack(cloud, "role", "assignment", "list", "--user", "cliuser",
                                  "--names", "-f", "json")
    assert [(a["Role"], a["Project"]) for a in assignments] == [("member", "cliproj@Default")]

    as_user = {"user": "cliuser", "password": "cli-pw", "project": "cliproj"}
    cred = await openstack(cloud, "ec2", "credentials", "create", "-f", "json", **as_user)
    assert cred["project_id"] == project["id"] and cred["user_id"] == user["id"]
    listed = await openstack(cloud, "ec2", "credentials", "list", "-f", "json", **as_user)
    assert [c["Access"] for c in listed] == [cred["access"]]
    await openstack(cloud, "ec2", "credentials", "delete", cred["access"], **as_user)
    assert await openstack(cloud, "ec2", "credentials", "list", "-f", "json", **as_user) == []
