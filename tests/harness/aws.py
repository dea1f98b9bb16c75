"""The EC2 and S3 clouds, driven with boto3 and awscli: a real controller (EC2 and the object
store on free ports) with EC2 credentials made through its Identity API; the EC2 cloud has one
fake-driver agent and a Flat network (nothing is plumbed on the host for FlatManager) with
floating IPs; the S3 cloud no agent, on plain HTTP or HTTPS with a test CA."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import os
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import boto3
import pytest
from botocore.config import Config
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from cloudd.api.ec2.service import Ec2Service
from cloudd.config import CloudConfig
from cloudd.db import Database
from cloudd.network import floating, ipam
from cloudd.objectstore.service import ObjectstoreService

from .api import ApiCloud, fields_of, running_cloud
from .users import Keys, ec2_credentials

T = TypeVar("T")
AWS = str(Path(sys.executable).with_name("aws"))


async def run(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Blocking client calls run in a thread: the server shares this event loop."""
    return await asyncio.to_thread(fn, *args, **kwargs)


async def get_object(s3: Any, **params: Any) -> tuple[bytes, dict[str, Any]]:
    """GetObject and its body, both read in a thread: (bytes, response)."""
    def fetch() -> tuple[bytes, dict[str, Any]]:
        response = s3.get_object(**params)
        return response["Body"].read(), response

    return await asyncio.to_thread(fetch)


@dataclass(kw_only=True)
class AwsCloud(ApiCloud):
    """The cloud with its S3 object store, and EC2 keys made through its Identity API."""

    s3_url: str  # the object store's own URL

    @property
    def state_dir(self) -> Path:
        return Path(self.host.config.default.state_dir)

    async def identity(self, method: str, path: str, body: Any = None,
                       token: str | None = None) -> Any:
        """An Identity v3 call (as the admin unless `token`) that must succeed: its body."""
        code, reply, _ = await self.call(method, f"/identity/v3{path}", token, json=body)
        assert code < 300, (code, reply)
        return reply

    async def credentials(self, project: str | None = None, role: str = "member") -> Keys:
        """EC2 keys: the admin's in the admin project, or a new user's (with `role`) in a new
        project named after `project`."""
        return await ec2_credentials(self.identity, self.admin, project, role)


@dataclass(kw_only=True)
class Ec2Cloud(AwsCloud):
    ec2_url: str

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


async def _flat_networks(db: Database, cfg: CloudConfig, creds: dict[str, Any]) -> None:
    await ipam.create_networks(db, ipam.FLAT, "private", "10.20.0.0/24", bridge="br100")
    await floating.create_floating_ips(db, "192.0.2.0/29")


@contextlib.asynccontextmanager
async def ec2_cloud(db_url: str, tmp_path: Path) -> AsyncIterator[Ec2Cloud]:
    async with running_cloud(tmp_path, prepare=_flat_networks, database={"connection": db_url},
                             network={"network_manager": "FlatManager"}) as up:
        yield Ec2Cloud(**fields_of(up), ec2_url=up.host.get(Ec2Service).public_url,
                       s3_url=up.host.get(ObjectstoreService).public_url)


@dataclass(kw_only=True)
class S3Cloud(AwsCloud):
    ca_file: str | None = None  # the test CA when the object store is on HTTPS

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


@contextlib.asynccontextmanager
async def s3_cloud(db_url: str, tmp_path: Path, tls: bool) -> AsyncIterator[S3Cloud]:
    """A controller alone (no agent, no image) on `db_url`: the object store, on HTTPS when
    `tls`."""
    objectstore: dict[str, str] = {}
    ca_file = None
    if tls:
        ca, cert, key = make_tls_files(tmp_path)
        objectstore |= {"ssl_cert_file": str(cert), "ssl_key_file": str(key)}
        ca_file = str(ca)
    async with running_cloud(tmp_path, agent=False, boot_image=False,
                             database={"connection": db_url}, objectstore=objectstore) as up:
        yield S3Cloud(**fields_of(up), s3_url=up.host.get(ObjectstoreService).public_url,
                      ca_file=ca_file)


@pytest.fixture
async def s3cloud(db_url: str, tmp_path: Path) -> AsyncIterator[S3Cloud]:
    async with s3_cloud(db_url, tmp_path, tls=False) as cloud:
        yield cloud


@pytest.fixture
async def s3cloud_tls(db_url: str, tmp_path: Path) -> AsyncIterator[S3Cloud]:
    async with s3_cloud(db_url, tmp_path, tls=True) as cloud:
        yield cloud
