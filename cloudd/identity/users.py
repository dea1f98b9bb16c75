"""Users: their rules (the statements are cloudd.identity.store.users'). Passwords are kept only
as scrypt hashes, computed off the event loop; changing a user's password or disabling it
revokes its tokens, as Keystone does."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

from cloudd.db import DuplicateError, Executor
from cloudd.identity import store
from cloudd.identity.errors import IdentityConflict, IdentityNotFound, WrongPassword
from cloudd.identity.passwords import hash_password, verify_password
from cloudd.identity.projects import check_domain, get_project
from cloudd.identity.records import User
from cloudd.identity.tokens import revoke_user_tokens

# The columns update_user may set (from the API's pydantic model, never from the client).
UPDATABLE = ("name", "enabled", "default_project_id", "email")


def _duplicate(name: str | None) -> IdentityConflict:
    return IdentityConflict(
        f"Conflict occurred attempting to store user - Duplicate entry {name}.")


async def get_user(db: Executor, user_id: str) -> User:
    """The user, or IdentityNotFound (Keystone's 404 message)."""
    user = await store.users.get(db, user_id)
    if user is None:
        raise IdentityNotFound(f"Could not find user: {user_id}.")
    return user


async def list_users(db: Executor, name: str | None = None) -> list[User]:
    return await store.users.list_by_name(db, name)


async def create_user(db: Executor, name: str, password: str | None, enabled: bool,
                      domain_id: str | None = None, default_project_id: str | None = None,
                      email: str | None = None) -> User:
    check_domain(domain_id)
    if default_project_id:
        await get_project(db, default_project_id)
    user_id = uuid.uuid4().hex
    # No password: a random one nobody knows, so the user cannot log in until one is set.
    password_hash = await asyncio.to_thread(
        hash_password, password if password else uuid.uuid4().hex * 2)
    try:
        await store.users.insert(db, user_id, name, password_hash, default_project_id,
                                 time.time(), email=email, enabled=enabled)
    except DuplicateError:
        raise _duplicate(name) from None
    return await get_user(db, user_id)


async def update_user(db: Executor, user_id: str, fields: dict[str, Any],
                      password: str | None) -> User:
    """Set `fields` (names from UPDATABLE) and, when given, a new password; returns the user.
    A new password or `enabled: False` revokes the user's tokens."""
    await get_user(db, user_id)
    changes = {column: fields[column] for column in UPDATABLE if column in fields}
    if "enabled" in changes:
        changes["enabled"] = bool(changes["enabled"])
    if password:
        changes["password_hash"] = await asyncio.to_thread(hash_password, password)
    if changes.get("default_project_id"):
        await get_project(db, changes["default_project_id"])
    try:
        await store.users.update(db, user_id, changes)
    except DuplicateError:
        raise _duplicate(changes.get("name")) from None
    if password or fields.get("enabled") is False:
        await revoke_user_tokens(db, user_id)  # as Keystone does when credentials change
    return await get_user(db, user_id)


async def delete_user(db: Executor, user_id: str) -> None:
    if not await store.users.delete(db, user_id):
        raise IdentityNotFound(f"Could not find user: {user_id}.")


async def change_password(db: Executor, user_id: str, original: str, new: str) -> None:
    """Keystone's self-service change: the original password must match; tokens are revoked."""
    user = await get_user(db, user_id)
    if not await asyncio.to_thread(verify_password, original, user.password_hash):
        raise WrongPassword("The original password is not correct.")
    await store.users.set_password_hash(db, user_id, await asyncio.to_thread(hash_password, new))
    await revoke_user_tokens(db, user_id)
