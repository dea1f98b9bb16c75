"""A real controller in-process with the S3 object store on a free port, and EC2 credentials
made through its Identity API for boto3/awscli (plain HTTP, and HTTPS with a test CA)."""

from __future__ import annotations

import asyncio
import datetime
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import boto3
import pytest
from botocore.config import Config
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from cloudd.api.identity.bootstrap import bootstrap
from cloudd.api.service import ApiService
from cloudd.config import resolve_paths, validate
from cloudd.controller import build_controller
from cloudd.core import ServiceHost
from cloudd.db.service import DatabaseService
from cloudd.objectstore.service import ObjectstoreService

T = TypeVar("T")


@dataclass
class Keys:
    access: str
    secret: str
    project_id: str


@dataclass
class S3Cloud:
    api: str  # http://127.0.0.1:<api port>
    s3_url: str  # the object store's own URL
    session: aiohttp.ClientSession
    admin_token: str
    admin: dict[str, Any]
    state_dir: Path
    host: ServiceHost
    ca_file: str | None = None

    async def identity(self, method: str, path: str, body: Any = None) -> Any:
        async with self.session.request(method, f"{self.api}/identity/v3{path}", json=body,
                                        headers={"X-Auth-Token": self.admin_token}) as resp:
            assert resp.status < 300, (resp.status, await resp.text())
            return await resp.json() if resp.content_type == "application/json" else None

    async def credentials(self, project: str | None = None) -> Keys:
        """EC2 keys through the Identity API: the admin's in its project, or a new user's in
        a new project `project` (with the member role)."""
        if project is None:
            user_id, project_id = self.admin["user_id"], self.admin["project_id"]
        else:
            project_id = (await self.identity("POST", "/projects", {"project": {
                "name": f"{project}-{uuid.uuid4().hex[:6]}"}}))["project"]["id"]
            user_id = (await self.identity("POST", "/users", {"user": {
                "name": f"u-{uuid.uuid4().hex[:8]}", "password": "pw-secret"}}))["user"]["id"]
            roles = (await self.identity("GET", "/roles?name=member"))["roles"]
            await self.identity("PUT", f"/projects/{project_id}/users/{user_id}/roles/{roles[0]['id']}")
        cred = (await self.identity("POST", f"/users/{user_id}/credentials/OS-EC2",
                                    {"tenant_id": project_id}))["credential"]
        return Keys(cred["access"], cred["secret"], project_id)

    def client(self, keys: Keys | None, **config: Any) -> Any:
        """A boto3 S3 client; keys None makes an unsigned (anonymous) client."""
        from botocore import UNSIGNED

        if keys is None:
            config.setdefault("signature_version", UNSIGNED)
        return boto3.session.Session().client(
            "s3", endpoint_url=self.s3_url, region_name="us-east-1",
            aws_access_key_id=keys.access if keys else None,
            aws_secret_access_key=keys.secret if keys else None,
            verify=self.ca_file if self.ca_file else None,
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}, **config))


async def run(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Blocking client calls run in a thread: the server shares this event loop."""
    return await asyncio.to_thread(fn, *args, **kwargs)


async def get_object(s3: Any, **params: Any) -> tuple[bytes, dict[str, Any]]:
    """GetObject and its body, both read in a thread: (bytes, response)."""
    def fetch() -> tuple[bytes, dict[str, Any]]:
        response = s3.get_object(**params)
        return response["Body"].read(), response

    return await asyncio.to_thread(fetch)


def make_tls_files(directory: Path) -> tuple[Path, Path, Path]:
    """A CA and a 127.0.0.1 server certificate it signed: (ca, cert, key) PEM files."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "cloudd test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(minutes=5))
          .not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False),
                         critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    import ipaddress

    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
            .issuer_name(ca_name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]),
                critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(ca_key, hashes.SHA256()))
    paths = directory / "ca.pem", directory / "s3.pem", directory / "s3.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return paths


async def start_cloud(tmp_path: Path, tls: bool) -> AsyncIterator[S3Cloud]:
    objectstore = {"listen": "127.0.0.1", "port": "0"}
    ca_file = None
    if tls:
        ca, cert, key = make_tls_files(tmp_path)
        objectstore |= {"ssl_cert_file": str(cert), "ssl_key_file": str(key)}
        ca_file = str(ca)
    cfg = resolve_paths(validate({
        "default": {"state_dir": str(tmp_path), "host": "ctl"},
        "database": {"connection": f"sqlite://{tmp_path}/cloudd.db"},
        "api": {"listen": "127.0.0.1", "port": "0"},
        "rpc": {"listen": "127.0.0.1", "port": "0"},
        "objectstore": objectstore,
    }))
    host = build_controller(cfg)
    await host.start()
    try:
        creds = await bootstrap(host.get(DatabaseService).db, tmp_path)
        api = f"http://127.0.0.1:{host.get(ApiService).port}"
        async with aiohttp.ClientSession() as session:
            async with session.post(f"{api}/identity/v3/auth/tokens", json={"auth": {
                "identity": {"methods": ["password"], "password": {"user": {
                    "name": "admin", "domain": {"id": "default"}, "password": creds["password"]}}},
                "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}}}) as resp:
                token = resp.headers["X-Subject-Token"]
            yield S3Cloud(api, host.get(ObjectstoreService).public_url, session, token, creds,
                          tmp_path, host, ca_file)
    finally:
        await host.stop()


@pytest.fixture
async def s3cloud(tmp_path: Path) -> AsyncIterator[S3Cloud]:
    async for cloud in start_cloud(tmp_path, tls=False):
        yield cloud


@pytest.fixture
async def s3cloud_tls(tmp_path: Path) -> AsyncIterator[S3Cloud]:
    async for cloud in start_cloud(tmp_path, tls=True):
        yield cloud
