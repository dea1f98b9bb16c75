"""Login abuse: failed passwords lock a user name and a client address out for a while, an
unknown user costs the same scrypt verification as a known one, and tokens obtained from a
revoked token die with it."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from harness.api import ApiCloud as Cloud
from harness.users import password_auth

from cloudd.api.identity import auth_tokens
from cloudd.identity.passwords import verify_password

from .test_tokens import make_user

LOCKED = "temporarily locked out"
TOKENS = "/identity/v3/auth/tokens"


def lockout(cloud: Cloud, attempts: int = 3, per_address: int = 30) -> None:
    cfg = cloud.host.config.identity
    cfg.lockout_failure_attempts = attempts
    cfg.lockout_failure_attempts_per_address = per_address
    cfg.failed_login_delay = 0.001  # the growing delay runs, without slowing the suite down


async def login(cloud: Cloud, user: str, password: str, project: str | None = None) \
        -> tuple[int, str]:
    code, body, _ = await cloud.call("POST", TOKENS, "",
                                     json=password_auth(user, password, project))
    return code, "" if code == 201 else body["error"]["message"]


async def test_wrong_passwords_lock_the_user_out(cloud: Cloud) -> None:
    lockout(cloud, attempts=3)
    await make_user(cloud, "victim", "right-pw", "member", "victims")
    await make_user(cloud, "bystander", "by-pw", "member", "bystanders")
    for _ in range(2):
        assert await login(cloud, "victim", "guess") == (401, auth_tokens.AUTH_FAILED)
    # A success before the threshold clears the user's count...
    assert (await login(cloud, "victim", "right-pw", "victims"))[0] == 201
    for _ in range(2):
        assert await login(cloud, "victim", "guess") == (401, auth_tokens.AUTH_FAILED)
    assert (await login(cloud, "victim", "right-pw", "victims"))[0] == 201
    # ...three in a row lock it: even the right password is refused, with a clear message.
    for _ in range(3):
        assert await login(cloud, "victim", "guess") == (401, auth_tokens.AUTH_FAILED)
    status, message = await login(cloud, "victim", "right-pw", "victims")
    assert status == 401 and LOCKED in message and "Try again in" in message
    # By id too: the name and the id of one user share one count.
    victim_id = (await cloud.db.fetchrow("SELECT id FROM users WHERE name = 'victim'") or {})["id"]
    code, body, _ = await cloud.call("POST", TOKENS, "", json={"auth": {"identity": {
        "methods": ["password"], "password": {"user": {"id": victim_id, "password": "right-pw"}}}}})
    assert code == 401 and LOCKED in body["error"]["message"]
    # Other users of the same address are not locked by one user's lockout.
    assert (await login(cloud, "bystander", "by-pw", "bystanders"))[0] == 201


async def test_the_growing_delay_does_not_hold_the_loop(cloud: Cloud) -> None:
    """A failed login waits (doubling) before its 401, but asleep: /healthz and a right
    password are answered while it waits. Ordered, not timed."""
    lockout(cloud, attempts=10)
    cloud.host.config.identity.failed_login_delay = 1.0
    assert await login(cloud, "admin", "guess-1") == (401, auth_tokens.AUTH_FAILED)  # waits 1 s
    slow = asyncio.create_task(login(cloud, "admin", "guess-2"))  # now waits 2 s
    await asyncio.sleep(0.3)  # let it reach its delay
    code, health, _ = await cloud.call("GET", "/healthz", "")  # 503: this slice starts no services
    assert code in (200, 503) and "services" in health
    assert not slow.done()
    assert (await login(cloud, "admin", cloud.admin["password"], "admin"))[0] == 201
    assert not slow.done()
    assert await slow == (401, auth_tokens.AUTH_FAILED)


async def test_unknown_users_lock_out_like_real_ones(cloud: Cloud) -> None:
    """A lockout must not tell an unknown name from a real one."""
    lockout(cloud, attempts=2)
    for _ in range(2):
        assert await login(cloud, "nobody-at-all", "x") == (401, auth_tokens.AUTH_FAILED)
    status, message = await login(cloud, "nobody-at-all", "x")
    assert status == 401 and LOCKED in message


async def test_one_address_guessing_many_users_is_locked_out(cloud: Cloud) -> None:
    lockout(cloud, attempts=5, per_address=4)
    for n in range(4):
        assert await login(cloud, f"spray-{n}", "x") == (401, auth_tokens.AUTH_FAILED)
    # The address is locked: even the admin's right password from it is refused now.
    status, message = await login(cloud, "admin", cloud.admin["password"], "admin")
    assert status == 401 and LOCKED in message


async def test_unknown_user_costs_a_full_password_verification(
        cloud: Cloud, monkeypatch: pytest.MonkeyPatch) -> None:
    """Not timed: the unknown-user path must run the same scrypt check a wrong password runs,
    against a hash with the parameters of stored ones."""
    real_verify = verify_password  # the function auth_tokens calls, patched below
    verified: list[tuple[str, bool]] = []

    def spy(password: str, stored: str) -> bool:
        result = real_verify(password, stored)
        verified.append((stored.rpartition("$")[0].rpartition("$")[0], result))
        return result

    monkeypatch.setattr(auth_tokens, "verify_password", spy)
    admin_hash = str(await cloud.db.fetchval("SELECT password_hash FROM users WHERE name = 'admin'"))
    assert await login(cloud, "admin", "wrong") == (401, auth_tokens.AUTH_FAILED)
    assert await login(cloud, "no-such-user", "wrong") == (401, auth_tokens.AUTH_FAILED)
    params = admin_hash.rpartition("$")[0].rpartition("$")[0]  # scrypt$N$r$p
    assert verified == [(params, False), (params, False)]


async def rescope(cloud: Cloud, token: str, project: str) -> tuple[int, Any, Any]:
    """Re-scope `token` to `project`: the call's (status, body, headers)."""
    return await cloud.call("POST", TOKENS, "", json={"auth": {
        "identity": {"methods": ["token"], "token": {"id": token}},
        "scope": {"project": {"name": project, "domain": {"id": "default"}}}}})


async def test_rescoping_from_a_revoked_token_fails_and_its_children_die(cloud: Cloud) -> None:
    await make_user(cloud, "demo", "s3cret", "member", "demo")
    unscoped, _ = await cloud.authenticate(password_auth("demo", "s3cret", None))
    code, _, headers = await rescope(cloud, unscoped, "demo")
    assert code == 201
    child = headers["X-Subject-Token"]
    grandchild = (await rescope(cloud, child, "demo"))[2]["X-Subject-Token"]
    assert (await cloud.call("GET", "/identity/v3/auth/projects", grandchild))[0] == 200

    code, _, _ = await cloud.call("DELETE", TOKENS, unscoped,
                                  headers={"X-Subject-Token": unscoped})
    assert code == 204
    code, _, headers = await rescope(cloud, unscoped, "demo")
    assert code == 401
    assert "X-Subject-Token" not in headers
    # The tokens re-scoped from it, before it was revoked, share its audit chain and its fate.
    for token in (child, grandchild):
        assert (await cloud.call("GET", "/identity/v3/auth/projects", token))[0] == 401
        assert (await rescope(cloud, token, "demo"))[0] == 401
    # Another login of the same user is a new chain and works.
    assert (await login(cloud, "demo", "s3cret", "demo"))[0] == 201
