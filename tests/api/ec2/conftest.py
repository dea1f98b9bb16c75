"""A real controller (EC2 on a free port) + one agent with the fake driver, a Flat network
(nothing is plumbed on the host for FlatManager) with floating IPs, and EC2 credentials made
through the Identity API for boto3 and awscli."""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import boto3
import pytest
from botocore.config import Config
from loopback import loopback_config

from cloudd.agent.service import build_agent
from cloudd.api.ec2.service import Ec2Service
from cloudd.api.identity.bootstrap import bootstrap
from cloudd.api.service import ApiService
from cloudd.controller import build_controller
from cloudd.core import ServiceHost
from cloudd.db.service import DatabaseService
from cloudd.network import floating, ipam
from cloudd.objectstore.service import ObjectstoreService

from ..compute.conftest import BOOT_IMAGE, add_boot_image

T = TypeVar("T")
AWS = str(Path(sys.executable).with_name("aws"))
__all__ = ["BOOT_IMAGE", "Ec2Cloud", "Keys", "run"]


@dataclass
class Keys:
    access: str
    secret: str
    project_id: str
    user_id: str


@dataclass
class Ec2Cloud:
    api: str
    ec2_url: str
    s3_url: str
    session: aiohttp.ClientSession
    admin_token: str
    admin: dict[str, Any]
    host: ServiceHost
    state_dir: Path

    @property
    def db(self) -> Any:
        return self.host.get(DatabaseService).db

    async def identity(self, method: str, path: str, body: Any = None,
                       token: str | None = None) -> Any:
        async with self.session.request(method, f"{self.api}/identity/v3{path}", json=body,
                                        headers={"X-Auth-Token": token or self.admin_token}) as r:
            assert r.status < 300, (r.status, await r.text())
            return await r.json() if r.content_type == "application/json" else None

    async def credentials(self, project: str | None = None, role: str = "member") -> Keys:
        """EC2 keys: the admin's in the admin project, or a new user's (with `role`) in a new
        project named after `project`."""
        if project is None:
            user_id, project_id = self.admin["user_id"], self.admin["project_id"]
        else:
            project_id = (await self.identity("POST", "/projects", {"project": {
                "name": f"{project}-{uuid.uuid4().hex[:6]}"}}))["project"]["id"]
            user_id = (await self.identity("POST", "/users", {"user": {
                "name": f"u-{uuid.uuid4().hex[:8]}", "password": "pw-secret"}}))["user"]["id"]
            roles = (await self.identity("GET", f"/roles?name={role}"))["roles"]
            await self.identity("PUT", f"/projects/{project_id}/users/{user_id}/roles/"
                                f"{roles[0]['id']}")
        cred = (await self.identity("POST", f"/users/{user_id}/credentials/OS-EC2",
                                    {"tenant_id": project_id}))["credential"]
        return Keys(cred["access"], cred["secret"], project_id, user_id)

    def client(self, keys: Keys, service: str = "ec2", **config: Any) -> Any:
        url = self.ec2_url if service == "ec2" else self.s3_url
        extra = {"s3": {"addressing_style": "path"}} if service == "s3" else {}
        return boto3.session.Session().client(
            service, endpoint_url=url, region_name="RegionOne", aws_access_key_id=keys.access,
            aws_secret_access_key=keys.secret,
            config=Config(retries={"max_attempts": 1}, **extra, **config))

    async def aws(self, keys: Keys, *args: str) -> str:
        env = {"PATH": os.environ.get("PATH", ""), "HOME": str(self.state_dir),
               "AWS_ACCESS_KEY_ID": keys.access, "AWS_SECRET_ACCESS_KEY": keys.secret,
               "AWS_DEFAULT_REGION": "RegionOne", "AWS_CONFIG_FILE": "/dev/null",
               "AWS_SHARED_CREDENTIALS_FILE": "/dev/null"}
        proc = await asyncio.create_subprocess_exec(
            AWS, "--endpoint-url", self.ec2_url, "--output", "json", *args, env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await proc.communicate()
        assert proc.returncode == 0, f"aws {' '.join(args)}: {err.decode()}"
        return out.decode()


async def run(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Blocking client calls run in a thread: the server shares this event loop."""
    return await asyncio.to_thread(fn, *args, **kwargs)


@pytest.fixture
async def ec2cloud(tmp_path: Path) -> AsyncIterator[Ec2Cloud]:
    cfg = loopback_config(tmp_path, network={"network_manager": "FlatManager"})
    host = build_controller(cfg)
    build_agent(cfg, host)
    await host.start()
    try:
        db = host.get(DatabaseService).db
        creds = await bootstrap(db, tmp_path)
        await add_boot_image(db, cfg, tmp_path)
        await ipam.create_networks(db, ipam.FLAT, "private", "10.20.0.0/24", bridge="br100")
        await floating.create_floating_ips(db, "192.0.2.0/29")
        api = f"http://127.0.0.1:{host.get(ApiService).port}"
        async with aiohttp.ClientSession() as session:
            async with session.post(f"{api}/identity/v3/auth/tokens", json={"auth": {
                "identity": {"methods": ["password"], "password": {"user": {
                    "name": "admin", "domain": {"id": "default"}, "password": creds["password"]}}},
                "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}}}) as resp:
                token = resp.headers["X-Subject-Token"]
            yield Ec2Cloud(api, host.get(Ec2Service).public_url,
                           host.get(ObjectstoreService).public_url, session, token, creds, host,
                           tmp_path)
    finally:
        await host.stop()
