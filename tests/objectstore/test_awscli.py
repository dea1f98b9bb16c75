"""The real awscli (and boto3) over HTTP and over HTTPS, where uploads are aws-chunked bodies
with CRC32 trailers: mb, cp (small and multipart), ls, sync, presign, rm, rb, byte for byte."""

from __future__ import annotations

import asyncio
import os
import ssl
import sys
import urllib.request
from pathlib import Path

import pytest
from harness.aws import S3Cloud, get_object, run
from harness.users import Keys

AWS = str(Path(sys.executable).with_name("aws"))


async def aws(cloud: S3Cloud, keys: Keys, *args: str) -> str:
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(cloud.state_dir),
           "AWS_ACCESS_KEY_ID": keys.access, "AWS_SECRET_ACCESS_KEY": keys.secret,
           "AWS_DEFAULT_REGION": "us-east-1", "AWS_CONFIG_FILE": "/dev/null",
           "AWS_SHARED_CREDENTIALS_FILE": "/dev/null"}
    if cloud.ca_file:
        env["AWS_CA_BUNDLE"] = cloud.ca_file
    proc = await asyncio.create_subprocess_exec(
        AWS, "--endpoint-url", cloud.s3_url, *args, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    assert proc.returncode == 0, f"aws {' '.join(args)}: {err.decode()}"
    return out.decode()


async def check_cli_round_trip(cloud: S3Cloud, tmp_path: Path) -> None:
    keys = await cloud.credentials()
    local = tmp_path / "local"
    (local / "sub").mkdir(parents=True)
    small = os.urandom(1000)
    big = os.urandom(12 * 1024 * 1024 + 3)  # above awscli's 8 MiB multipart threshold
    (local / "small.bin").write_bytes(small)
    (local / "big.bin").write_bytes(big)
    (local / "sub" / "x.txt").write_bytes(b"nested\n")

    await aws(cloud, keys, "s3", "mb", "s3://data")
    await aws(cloud, keys, "s3", "cp", str(local / "small.bin"), "s3://data/small.bin")
    await aws(cloud, keys, "s3", "cp", str(local / "big.bin"), "s3://data/big.bin")
    await aws(cloud, keys, "s3", "sync", str(local), "s3://data/tree/")
    top = await aws(cloud, keys, "s3", "ls", "s3://data/")
    assert "PRE tree/" in top and "small.bin" in top and "big.bin" in top
    tree = await aws(cloud, keys, "s3", "ls", "s3://data/tree/")
    assert "PRE sub/" in tree and "x.txt" not in tree
    recursive = await aws(cloud, keys, "s3", "ls", "--recursive", "s3://data/tree/")
    assert "tree/sub/x.txt" in recursive
    assert "upload" not in await aws(cloud, keys, "s3", "sync", str(local), "s3://data/tree/")

    back = tmp_path / "back"
    await aws(cloud, keys, "s3", "cp", "s3://data/big.bin", str(back / "big.bin"))
    await aws(cloud, keys, "s3", "sync", "s3://data/tree/", str(back / "tree"))
    assert (back / "big.bin").read_bytes() == big
    assert (back / "tree" / "small.bin").read_bytes() == small
    assert (back / "tree" / "sub" / "x.txt").read_bytes() == b"nested\n"

    url = (await aws(cloud, keys, "s3", "presign", "s3://data/small.bin")).strip()
    context = ssl.create_default_context(cafile=cloud.ca_file) if cloud.ca_file else None

    def fetch() -> bytes:
        with urllib.request.urlopen(url, context=context, timeout=10) as resp:
            data: bytes = resp.read()
            return data

    assert await run(fetch) == small

    s3 = cloud.client(keys)  # boto3's PutObject: aws-chunked with a CRC32 trailer over HTTPS
    await run(s3.put_object, Bucket="data", Key="boto.bin", Body=small)
    assert (await get_object(s3, Bucket="data", Key="boto.bin"))[0] == small

    await aws(cloud, keys, "s3", "rm", "--recursive", "s3://data/")
    await aws(cloud, keys, "s3", "rb", "s3://data")
    assert "data" not in await aws(cloud, keys, "s3", "ls")


@pytest.mark.slow
async def test_awscli_over_http(s3cloud: S3Cloud, tmp_path: Path) -> None:
    await check_cli_round_trip(s3cloud, tmp_path)


@pytest.mark.slow
async def test_awscli_over_https(s3cloud_tls: S3Cloud, tmp_path: Path) -> None:
    assert s3cloud_tls.s3_url.startswith("https://")
    await check_cli_round_trip(s3cloud_tls, tmp_path)
