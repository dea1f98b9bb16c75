"""Logs: secrets never reach them, and one request id follows a request from the API to the agent."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness.api import BOOT_IMAGE, cloud  # noqa: F401  # controller+agent fixture
from harness.api import ApiCloud as Cloud

from cloudd.log import configure_handler


@pytest.fixture
def debug_log(tmp_path: Path) -> Iterator[Path]:
    """Every logger at DEBUG into a JSON-lines file, set up the way `cloudd serve` does it."""
    path = tmp_path / "debug.log"
    handler = configure_handler(logging.FileHandler(path), "json")
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield path
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
        handler.close()


async def _wait(cloud: Cloud, server_id: str, status: str) -> None:  # noqa: F811
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        code, body, _ = await cloud.call("GET", f"/compute/v2.1/servers/{server_id}")
        if (code == 404 and status == "DELETED") or (code == 200 and body["server"]["status"] == status):
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{server_id} never reached {status}")


async def test_a_full_run_logs_no_secret_and_follows_the_request_id(
        debug_log: Path, cloud: Cloud, tmp_path: Path) -> None:  # noqa: F811
    password = (tmp_path / "admin-password").read_text().strip()
    token = await cloud.token("admin", password, "admin")
    user_id = await cloud.db.fetchval("SELECT id FROM users WHERE name = 'admin'")

    code, body, _ = await cloud.call("POST", f"/identity/v3/users/{user_id}/credentials/OS-EC2",
                                     token=token, json={"tenant_id": cloud.admin_project})
    assert code == 201, body
    ec2_secret = body["credential"]["secret"]
    code, body, _ = await cloud.call("POST", "/compute/v2.1/os-keypairs", token=token,
                                     json={"keypair": {"name": "k1"}})
    assert code == 200 and "PRIVATE KEY" in body["keypair"]["private_key"]

    code, body, headers = await cloud.call("POST", "/compute/v2.1/servers", token=token, json={
        "server": {"name": "s1", "imageRef": BOOT_IMAGE, "flavorRef": "1", "key_name": "k1",
                   "adminPass": "Server-Pass-9x"}})
    assert code == 202, body
    create_request_id = headers["X-OpenStack-Request-ID"]
    server_id = body["server"]["id"]
    await _wait(cloud, server_id, "ACTIVE")
    code, _, _ = await cloud.call("DELETE", f"/compute/v2.1/servers/{server_id}", token=token)
    assert code == 204
    await _wait(cloud, server_id, "DELETED")

    text = debug_log.read_text()  # noqa: ASYNC240  # the run is over: nothing else waits
    assert len(text) > 1000, "DEBUG logging captured next to nothing"
    for secret in (password, token, cloud.admin_token, ec2_secret, "PRIVATE KEY", "Server-Pass-9x"):
        assert secret not in text, f"a secret reached the log: {secret[:12]}..."

    # The create's request id is on the agent's side of the RPC (compute.* runs only there).
    lines = [json.loads(line) for line in text.splitlines()]
    agent_side = [e for e in lines if e["request_id"] == create_request_id
                  and e["message"].startswith("rpc served") and " compute." in e["message"]]
    assert agent_side, f"no agent log line carries {create_request_id}"


def test_redaction_catches_what_code_might_log(tmp_path: Path) -> None:
    path = tmp_path / "x.log"
    handler = configure_handler(logging.FileHandler(path))
    logger = logging.getLogger("cloudd.test.redaction")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        logger.debug("headers %s", {"X-Auth-Token": "tok-abc123", "X-Subject-Token": "tok-def456"})
        logger.info('body {"auth": {"password": {"user": {"password": "pw-ghi789"}}}}')
        logger.info("ec2 secret=sec-jkl012&access=AK1 url postgresql://u:pw-mno345@db/x")
        logger.warning("key %s", "-----BEGIN OPENSSH PRIVATE KEY-----\nb3Blbn\n-----END OPENSSH "
                       "PRIVATE KEY-----\n")
        try:
            raise ValueError("adminPass=pw-pqr678 rejected")
        except ValueError:
            logger.exception("failed")
    finally:
        logger.removeHandler(handler)
        handler.close()
    text = path.read_text()
    for secret in ("tok-abc123", "tok-def456", "pw-ghi789", "sec-jkl012", "pw-mno345", "PRIVATE KEY",
                   "pw-pqr678"):
        assert secret not in text
    assert "access=AK1" in text and "ValueError" in text  # what is not secret stays readable
