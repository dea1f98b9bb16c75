"""The identity family's repository (issue 17, item 2): every statement on ``users``,
``projects``, ``roles``, ``role_assignments``, ``tokens`` and ``ec2_credentials``, one module per
table group, returning the typed records of cloudd.identity.records.

The rules (who may have a token, implied roles, revocation, password hashing off the loop,
Keystone's refusals) stay in the modules of cloudd.identity, which call these; a missing row is
``None`` or ``False`` here, and the rules decide what that means.
"""

from __future__ import annotations

from cloudd.identity.store import credentials, projects, roles, tokens, users

__all__ = ["credentials", "projects", "roles", "tokens", "users"]
