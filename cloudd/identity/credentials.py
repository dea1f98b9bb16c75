"""EC2 credentials: their rules, and their lookup by the S3 and EC2 APIs' signature checks
(the statements are cloudd.identity.store.credentials').

An EC2 credential is an access/secret pair bound to one user on one project; it authorizes
what that user's roles on that project allow, read again on every use.
"""

from __future__ import annotations

import dataclasses
import hashlib
import time
import uuid

from cloudd.db import Executor
from cloudd.identity import store
from cloudd.identity.records import CredentialGrant, Ec2Credential
from cloudd.identity.tokens import effective_roles


async def lookup_ec2_credential(db: Executor, access: str) -> CredentialGrant | None:
    """The credential with that access key, or None when no such key exists.

    Its user's and project's names, whether both are enabled, and `roles` (the role names on
    the credential's project, implied ones included) are read on every call so that a role
    removed or a user disabled stops the key at once. Callers refuse it when
    `credential_refusal` gives a reason.
    """
    grant = await store.credentials.grant(db, access)
    if grant is None:
        return None
    roles = await effective_roles(db, grant.user_id, grant.project_id)
    return dataclasses.replace(grant, roles=tuple(role.name for role in roles))


def credential_refusal(cred: CredentialGrant) -> str | None:
    """Why a known credential may not be used at all (None: it may, within its roles).

    Nova's policies give nothing to a user without at least the reader role on the project,
    so neither do S3 and EC2; a disabled user or project is refused like Keystone refuses it.
    """
    if not cred.enabled:
        return "The user or project of this access key is disabled."
    if "reader" not in cred.roles:
        return "The user of this access key has no role on its project."
    return None


def credential_id(access: str) -> str:
    return hashlib.sha256(access.encode()).hexdigest()  # Keystone's id for an ec2 credential


async def create_ec2_credential(db: Executor, user_id: str, project_id: str) -> Ec2Credential:
    """A new random access/secret pair for the user on the project."""
    return await store.credentials.insert(db, uuid.uuid4().hex, uuid.uuid4().hex, user_id,
                                          project_id, time.time())


async def list_ec2_credentials(db: Executor, user_id: str | None) -> list[Ec2Credential]:
    """One user's credentials, or everyone's when `user_id` is None, oldest first."""
    return await store.credentials.list_oldest_first(db, user_id)


async def get_user_ec2_credential(db: Executor, user_id: str, access: str) -> Ec2Credential | None:
    """The credential with that access key if it belongs to that user."""
    return await store.credentials.of_user(db, user_id, access)


async def delete_ec2_credential(db: Executor, access: str) -> None:
    await store.credentials.delete(db, access)
