"""A bound on the requests one client address has in flight on the routes anyone may call before
authenticating (asking for a token, every EC2 and S3 call): one address cannot occupy the
password hashing threads, the database or the loop with thousands of parallel attempts."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from aiohttp import web

from cloudd.web.inputs import Handler, InputRefused

# Generous for a person or a script (the openstack CLI and boto3 send a few at a time), small
# against a flood from one address.
UNAUTHENTICATED_PER_CLIENT = 16


class TooManyRequests(InputRefused):
    def __init__(self) -> None:
        super().__init__("Too many requests at once from your address; retry when the earlier "
                         "ones have been answered.", 429)


class PerClientLimit:
    """At most `limit` requests at once per client address; more are refused, never queued."""

    def __init__(self, limit: int = UNAUTHENTICATED_PER_CLIENT) -> None:
        self.limit = limit
        self.in_flight: dict[str, int] = {}

    @contextmanager
    def slot(self, request: web.Request) -> Iterator[None]:
        """Raises TooManyRequests when the request's address already has `limit` in flight."""
        address = request.remote or ""
        count = self.in_flight.get(address, 0)
        if count >= self.limit:
            raise TooManyRequests()
        self.in_flight[address] = count + 1
        try:
            yield
        finally:
            left = self.in_flight[address] - 1
            if left:
                self.in_flight[address] = left
            else:  # no entry left behind per address ever seen
                del self.in_flight[address]


def per_client_middleware(limit: PerClientLimit, applies: tuple[tuple[str, str], ...]) -> Any:
    """The bound on the routes `applies` names as (method, path suffix); raises inside the API's
    error middleware, so the 429 has that API's shape."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not any(request.method == method and request.path.endswith(suffix)
                   for method, suffix in applies):
            return await handler(request)
        with limit.slot(request):
            return await handler(request)

    return middleware
