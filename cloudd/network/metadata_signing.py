"""How a host's metadata proxy (agent) vouches for a guest to the metadata service (controller):
the header naming the proxy's host and Nova's ``X-Instance-ID-Signature``, keyed per host. Pure:
both processes import it."""

from __future__ import annotations

import hashlib
import hmac

PROXY_HOST_HEADER = "X-Metadata-Proxy-Host"


def sign(key: str, instance_id: str) -> str:
    """Nova's ``X-Instance-ID-Signature``: hex HMAC-SHA256 of the instance id."""
    return hmac.new(key.encode(), instance_id.encode(), hashlib.sha256).hexdigest()


def host_key(secret: str, host: str) -> str:
    """The key one host's proxy signs with (Nova shares one secret with every host; here a host
    holds only its own key, and can sign for no guest it does not serve)."""
    return hmac.new(secret.encode(), b"metadata-proxy:" + host.encode(), hashlib.sha256).hexdigest()
