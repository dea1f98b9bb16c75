"""A real aiohttp server on 127.0.0.1 and a real client websocket, with an RpcPeer on each end
(harness.rpc_link)."""

from __future__ import annotations

import pytest
from harness.rpc_link import LinkFactory, open_link


@pytest.fixture
def link_factory() -> LinkFactory:
    return open_link
