"""The `limit` query parameter as Nova and Glance read it; each API wraps the error in its own."""

from __future__ import annotations


def parse_limit_text(text: str | None, default: int, maximum: int) -> int:
    """`default` when absent, capped at `maximum`; ValueError with the API's message otherwise."""
    if text is None:
        return default
    try:
        limit = int(text)
    except ValueError:
        raise ValueError("limit param must be an integer") from None
    if limit < 0:
        raise ValueError("limit param must be positive")
    return min(limit, maximum)
