"""kill -9 of the controller in the middle of an upload: after a restart the half-written object
is neither visible nor left on disk, and what was stored before is intact."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start(config: Path, api: int, s3: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen([sys.executable, "-m", "cloudd", "--config", str(config), "serve"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert proc.poll() is None, "cloudd serve exited"
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{api}/healthz", timeout=2) as resp:
                if "objectstore" in json.loads(resp.read())["services"]:
                    with socket.create_connection(("127.0.0.1", s3), timeout=2):
                        return proc
        except OSError:
            pass
        time.sleep(0.2)
    raise AssertionError("controller did not start")


def identity(api: int, method: str, path: str, body: dict[str, Any],
             token: str | None = None) -> tuple[dict[str, Any], str]:
    request = urllib.request.Request(f"http://127.0.0.1:{api}/identity/v3{path}", method=method,
                                     data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json",
                                              **({"X-Auth-Token": token} if token else {})})
    with urllib.request.urlopen(request, timeout=10) as resp:
        return json.loads(resp.read()), resp.headers.get("X-Subject-Token", "")


def ec2_keys(api: int, state: Path) -> tuple[str, str]:
    password = (state / "admin-password").read_text().strip()
    token_body, token = identity(api, "POST", "/auth/tokens", {"auth": {
        "identity": {"methods": ["password"], "password": {"user": {
            "name": "admin", "domain": {"id": "default"}, "password": password}}},
        "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}}})
    user, project = token_body["token"]["user"]["id"], token_body["token"]["project"]["id"]
    cred, _ = identity(api, "POST", f"/users/{user}/credentials/OS-EC2", {"tenant_id": project}, token)
    return cred["credential"]["access"], cred["credential"]["secret"]


def begin_upload(s3_port: int, access: str, secret: str, size: int) -> http.client.HTTPConnection:
    """A PUT that announces `size` bytes; the caller sends only part of them."""
    url = f"http://127.0.0.1:{s3_port}/crashy/big.bin"
    request = AWSRequest(method="PUT", url=url, headers={
        "X-Amz-Content-SHA256": "UNSIGNED-PAYLOAD", "Content-Length": str(size)})
    SigV4Auth(Credentials(access, secret), "s3", "us-east-1").add_auth(request)
    conn = http.client.HTTPConnection("127.0.0.1", s3_port, timeout=10)
    conn.putrequest("PUT", "/crashy/big.bin", skip_accept_encoding=True)
    for name, value in request.headers.items():
        conn.putheader(name, value)
    conn.endheaders()
    return conn


@pytest.mark.slow
def test_kill_9_during_upload_leaves_no_partial_object(tmp_path: Path) -> None:
    state, api, s3_port = tmp_path / "state", free_port(), free_port()
    config = tmp_path / "cloudd.conf"
    config.write_text(
        f"[DEFAULT]\nstate_dir = {state}\nhost = crashhost\n"
        f"[api]\nlisten = 127.0.0.1\nport = {api}\n"
        f"[rpc]\nlisten = 127.0.0.1\nport = {free_port()}\n"
        f"[objectstore]\nlisten = 127.0.0.1\nport = {s3_port}\n")
    subprocess.run([sys.executable, "-m", "cloudd", "--config", str(config), "manage", "bootstrap"],
                   check=True, capture_output=True, timeout=60)
    proc = start(config, api, s3_port)
    try:
        access, secret = ec2_keys(api, state)
        s3 = boto3.session.Session().client(
            "s3", endpoint_url=f"http://127.0.0.1:{s3_port}", region_name="us-east-1",
            aws_access_key_id=access, aws_secret_access_key=secret,
            config=Config(s3={"addressing_style": "path"}))
        s3.create_bucket(Bucket="crashy")
        s3.put_object(Bucket="crashy", Key="kept.txt", Body=b"before the crash")

        conn = begin_upload(s3_port, access, secret, 64 * 1024 * 1024)
        conn.send(os.urandom(8 * 1024 * 1024))
        bucket_dir = state / "buckets" / "crashy"
        deadline = time.monotonic() + 10  # the server is writing the temporary file
        while not any(p.name.startswith(".tmp-") and p.stat().st_size > 0 for p in bucket_dir.iterdir()):
            assert time.monotonic() < deadline, "the upload never reached the disk"
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        conn.close()
        files_before_restart = sorted(p.name for p in bucket_dir.iterdir())
        assert any(name.startswith(".tmp-") for name in files_before_restart)

        proc = start(config, api, s3_port)
        listed = s3.list_objects_v2(Bucket="crashy")
        assert [o["Key"] for o in listed["Contents"]] == ["kept.txt"]
        with pytest.raises(s3.exceptions.ClientError):
            s3.head_object(Bucket="crashy", Key="big.bin")
        assert s3.get_object(Bucket="crashy", Key="kept.txt")["Body"].read() == b"before the crash"
        assert not [p for p in bucket_dir.iterdir() if p.name.startswith(".tmp-")]
        assert len(list(bucket_dir.iterdir())) == 2  # kept.txt's data and metadata files only
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
