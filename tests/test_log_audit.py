"""The run-wide log audit (tests/log_audit.py) records the secrets cloudd makes and finds them in
a log even where no key names them (where redaction cannot see them)."""

from __future__ import annotations

import logging
import secrets
from pathlib import Path

import log_audit
from harness.api import ApiCloud as Cloud
from harness.api import cloud  # noqa: F401  # controller+agent fixture

from cloudd.log import configure_handler


async def test_secrets_the_apis_make_are_recorded(cloud: Cloud, tmp_path: Path) -> None:  # noqa: F811
    password = (tmp_path / "admin-password").read_text().strip()  # the bootstrap's
    assert password in log_audit.RECORDED
    assert cloud.admin_token in log_audit.RECORDED  # issued by the Identity API
    user_id = await cloud.db.fetchval("SELECT id FROM users WHERE name = 'admin'")
    code, body, _ = await cloud.call("POST", f"/identity/v3/users/{user_id}/credentials/OS-EC2",
                                     json={"tenant_id": cloud.admin_project})
    assert code == 201 and body["credential"]["secret"] in log_audit.RECORDED
    code, body, _ = await cloud.call("POST", "/compute/v2.1/os-keypairs",
                                     json={"keypair": {"name": "audit"}})
    assert code == 200
    body_lines = [line for line in body["keypair"]["private_key"].splitlines() if "-----" not in line]
    assert body_lines and set(body_lines) & log_audit.RECORDED


def test_a_secret_logged_without_a_key_is_found(tmp_path: Path) -> None:
    leak_file = tmp_path / "leak.txt"  # not *.log: the end-of-run scan must not see this leak
    handler = configure_handler(logging.FileHandler(leak_file))
    logger = logging.getLogger("cloudd.test.audit")
    logger.propagate = False  # nor the run's own log
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    token = secrets.token_urlsafe(32)  # recorded, as cloudd's token issuing is
    try:
        logger.info("issued %s to the user", token)  # redaction cannot know this is one
        logger.info("password=%s", "keyed-and-redacted")
    finally:
        logger.removeHandler(handler)
        logger.propagate = True
        handler.close()
    assert token in log_audit.RECORDED
    leaks = log_audit.grep_leaks([leak_file], {token, "keyed-and-redacted"})
    assert leaks == [f"{leak_file}: {token[:10]}..."]
    assert log_audit.grep_leaks([leak_file], {secrets.token_hex(20)}) == []
