"""Nova's KeypairAPI: a key pair is created under the project's `key_pairs` quota.

Above both the quota rules (which count a user's key pairs through `cloudd.compute.keypairs`)
and the key pair repository, so that neither imports the other. The Compute API's /os-keypairs
and EC2's CreateKeyPair / ImportKeyPair call it.
"""

from __future__ import annotations

from cloudd.compute import keypairs, quota
from cloudd.compute.keypairs import KeyPair
from cloudd.db import Database


async def create(db: Database, *, name: str, user_id: str, project_id: str, fingerprint: str,
                 public_key: str, key_type: str, now: float) -> KeyPair:
    """Insert under the project's key_pairs quota (QuotaExceeded) in one transaction;
    DuplicateError when the user has a key of that name."""
    async with db.transaction() as tx:
        await quota.lock_project(tx, project_id)
        await quota.check(tx, project_id, {"key_pairs": 1}, user_id)
        return await keypairs.insert(tx, name=name, user_id=user_id, project_id=project_id,
                                     fingerprint=fingerprint, public_key=public_key,
                                     key_type=key_type, now=now)
