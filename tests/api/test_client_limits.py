"""Slow and greedy clients against a running controller (issue 15): a connection that does not
deliver its request head is closed, and one address cannot have more than a bounded number of
unauthenticated requests in flight (token issue, EC2), while other work goes on."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from harness.config import loopback_config

from cloudd.api.ec2.service import Ec2Service
from cloudd.api.service import ApiService
from cloudd.controller import build_controller
from cloudd.web.guards import UNAUTHENTICATED_PER_CLIENT

IDLE_TIMEOUT = 1.0
# A request whose body never finishes: its handler holds a slot while it waits for the body.
STALLED_TOKEN_REQUEST = (b"POST /identity/v3/auth/tokens HTTP/1.1\r\nHost: x\r\n"
                         b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{")
STALLED_EC2_REQUEST = (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded"
                       b"\r\nContent-Length: 100\r\n\r\nAction=")


@dataclass
class Ports:
    api: int
    ec2: int


@pytest.fixture
async def ports(tmp_path: Path) -> AsyncIterator[Ports]:
    host = build_controller(loopback_config(tmp_path, api={"client_idle_timeout": str(IDLE_TIMEOUT)}))
    await host.start()
    try:
        ec2 = host.get(Ec2Service).listener.port
        assert ec2 is not None
        yield Ports(host.get(ApiService).port or 0, ec2)
    finally:
        await host.stop()


async def closed_by_server(port: int, sent: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(sent)
        # Far longer than the idle timeout: without it the server would keep this for an hour.
        return await asyncio.wait_for(reader.read(), IDLE_TIMEOUT + 20)
    finally:
        writer.close()


@pytest.mark.parametrize("sent", [b"", b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: "])
async def test_connection_without_a_request_head_is_closed(ports: Ports, sent: bytes) -> None:
    assert await closed_by_server(ports.api, sent) == b""


async def test_idle_keepalive_connection_is_closed_after_an_answer(ports: Ports) -> None:
    answered = await closed_by_server(ports.api, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    assert answered.startswith(b"HTTP/1.1 ")


async def stall(port: int, request: bytes, count: int) -> list[asyncio.StreamWriter]:
    writers = []
    for _ in range(count):
        _reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(request)
        writers.append(writer)
    return writers


async def first_answer_with(session: aiohttp.ClientSession, method: str, url: str, wanted: int,
                            **kwargs: object) -> tuple[int, str]:
    """Repeat the request until it is answered with `wanted` (the stalled requests reach their
    handlers in their own time); the last answer otherwise."""
    status, text = 0, ""
    for _ in range(100):
        async with session.request(method, url, **kwargs) as resp:  # type: ignore[arg-type]
            status, text = resp.status, await resp.text()
        if status == wanted:
            break
        await asyncio.sleep(0.05)
    return status, text


async def test_unauthenticated_requests_per_address_are_bounded(ports: Ports) -> None:
    token_url = f"http://127.0.0.1:{ports.api}/identity/v3/auth/tokens"
    stalled = await stall(ports.api, STALLED_TOKEN_REQUEST, UNAUTHENTICATED_PER_CLIENT)
    async with aiohttp.ClientSession() as session:
        try:
            status, text = await first_answer_with(session, "POST", token_url, 429, json={})
            assert status == 429, text
            assert '"code": 429' in text and "Too many requests" in text
            # Authenticated and other routes are not held back by the flood.
            async with session.get(f"http://127.0.0.1:{ports.api}/healthz") as resp:
                assert resp.status in (200, 503)
        finally:
            for writer in stalled:
                writer.close()
        status, text = await first_answer_with(session, "POST", token_url, 400, json={})
        assert status == 400, text  # the slots are free again: an ordinary refusal


async def test_ec2_requests_per_address_are_bounded(ports: Ports) -> None:
    url = f"http://127.0.0.1:{ports.ec2}/"
    stalled = await stall(ports.ec2, STALLED_EC2_REQUEST, UNAUTHENTICATED_PER_CLIENT)
    async with aiohttp.ClientSession() as session:
        try:
            status, text = await first_answer_with(session, "GET", url, 503,
                                                   params={"Action": "DescribeRegions"})
            assert status == 503, text
            assert "<Code>RequestLimitExceeded</Code>" in text
        finally:
            for writer in stalled:
                writer.close()
        status, text = await first_answer_with(session, "GET", url, 401,
                                               params={"Action": "DescribeRegions"})
        assert status != 503, text
