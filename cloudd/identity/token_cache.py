"""Validated tokens, cached a few seconds per process so that every API call is not a
database round trip; a revocation or a role change through the identity API clears them."""

from __future__ import annotations

import time

from cloudd.db import Database
from cloudd.identity.records import TokenData
from cloudd.identity.tokens import hash_token, load_token


class TokenCache:
    """Validated tokens for a few seconds, so every API call is not a database round trip.

    One per process (module level below) so that a revocation through the identity API clears
    the entry every sub-app would otherwise keep using.
    """

    def __init__(self, ttl: float = 5.0) -> None:
        self.ttl = ttl
        self._entries: dict[str, tuple[float, TokenData]] = {}

    def get(self, id_hash: str) -> TokenData | None:
        entry = self._entries.get(id_hash)
        if entry is None:
            return None
        cached_until, token = entry
        if time.monotonic() > cached_until or time.time() >= token.expires_at:
            self._entries.pop(id_hash, None)
            return None
        return token

    def put(self, token: TokenData) -> None:
        if len(self._entries) > 10000:  # bound memory under a flood of distinct tokens
            self._entries.clear()
        self._entries[token.id_hash] = (time.monotonic() + self.ttl, token)

    def forget(self, id_hash: str) -> None:
        self._entries.pop(id_hash, None)

    def forget_user(self, user_id: str) -> None:
        for id_hash, (_, token) in list(self._entries.items()):
            if token.user.id == user_id:
                del self._entries[id_hash]

    def clear(self) -> None:
        self._entries.clear()


TOKEN_CACHE = TokenCache()


async def validate_token(db: Database, token: str) -> TokenData | None:
    """The token's data if it is valid now (cached briefly), else None."""
    id_hash = hash_token(token)
    cached = TOKEN_CACHE.get(id_hash)
    if cached is not None:
        return cached
    data = await load_token(db, id_hash)
    if data is not None:
        TOKEN_CACHE.put(data)
    return data
