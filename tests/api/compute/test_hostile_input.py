"""Hostile input against a running cloud (issue 15): every oversized, deep or huge-number body
is a 400/413 in the API's own error format, never a 500, and no request stalls the event loop
(a concurrent /healthz keeps answering within 100 ms)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
from harness.api import BOOT_IMAGE
from harness.api import ApiCloud as Cloud
from responsiveness import healthz_while

MIB = 1024 * 1024
# The loop's budget the issue names: nothing may hold it longer than this.
LOOP_BUDGET = 0.1
S = "/compute/v2.1/servers"

# Each route with the error body its API answers in: (method, path, key of the error document).
JSON_ROUTES = [
    ("POST", "/identity/v3/auth/tokens", "error"),
    ("POST", S, "overLimit"),
    ("POST", "/image/v2/images", "code"),
    ("POST", "/network/v2.0/floatingips", "NeutronError"),
]


async def post_raw(cloud: Cloud, path: str, data: Any, token: str | None = None,
                   content_type: str = "application/json") -> tuple[int, Any]:
    headers = {"Content-Type": content_type}
    if not path.endswith("/auth/tokens"):
        headers["X-Auth-Token"] = token or cloud.admin_token
    async with cloud.session.post(cloud.base + path, data=data, headers=headers) as resp:
        body = await resp.json() if resp.content_type == "application/json" else await resp.text()
        return resp.status, body


def assert_error(status: int, body: Any, expected: int, key: str) -> None:
    assert status == expected, body
    assert isinstance(body, dict) and key in body, body
    if key == "code":  # Glance's flat body
        assert body["code"] == expected
    else:
        assert body[key].get("code", expected) == expected or key == "NeutronError"


async def test_eight_mib_json_is_413_before_reading(cloud: Cloud) -> None:
    big = b'{"x": "' + b"a" * (8 * MIB) + b'"}'
    for method, path, key in JSON_ROUTES:
        (status, body), worst = await healthz_while(cloud.session, cloud.base,
                                                    post_raw(cloud, path, big))
        assert method == "POST"
        assert_error(status, body, 413, key)
        assert worst < LOOP_BUDGET, (path, worst)


async def test_chunked_body_is_bounded_while_it_arrives(cloud: Cloud) -> None:
    """No Content-Length: the limit applies to what arrives, and the client is cut off."""

    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"x": "'
        for _ in range(40):
            yield b"a" * 65536
        yield b'"}'

    for _method, path, key in JSON_ROUTES:
        status, body = await post_raw(cloud, path, chunks())
        assert_error(status, body, 413, key)


async def test_auth_limit_is_smaller_than_the_json_apis(cloud: Cloud) -> None:
    medium = b'{"x": "' + b"a" * (100 * 1024) + b'"}'  # over auth's 64 KiB, under 1 MiB
    status, body = await post_raw(cloud, "/identity/v3/auth/tokens", medium)
    assert_error(status, body, 413, "error")
    status, body = await post_raw(cloud, S, medium)
    assert_error(status, body, 400, "badRequest")  # read and parsed: just not a server


def deep(levels: int) -> bytes:
    return b'{"server": ' + b"[" * levels + b"]" * levels + b"}"


async def test_deep_nesting_and_huge_numbers_are_400_everywhere(cloud: Cloud) -> None:
    status, body, _ = await cloud.call("POST", S, json={"server": {
        "name": "victim", "imageRef": BOOT_IMAGE, "flavorRef": "1"}})
    assert status == 202, body
    server_id = body["server"]["id"]
    routes = [*JSON_ROUTES[:1], (None, S, "badRequest"), (None, f"{S}/{server_id}/action", "badRequest"),
              (None, "/image/v2/images", "code"), (None, "/network/v2.0/floatingips", "NeutronError"),
              (None, "/compute/v2.1/os-keypairs", "badRequest")]
    hostile = [
        deep(30_000),                                    # RecursionError in json
        deep(200),                                       # parses, but far deeper than any API
        b'{"server": {"min_count": ' + b"9" * 5000 + b"}}",  # int() refuses over 4300 digits
        b'{"server": {"min_count": ' + b"9" * 40 + b"}}",    # parses, but fits no column
        b'{"server": {"min_count": NaN}}',
        b'{"server": {"min_count": 1e999}}',
        b'{"x": "\xff\xfe"}',                            # not UTF-8
    ]
    for _method, path, key in routes:
        key = "error" if path.endswith("/auth/tokens") else key
        for document in hostile:
            (status, body), worst = await healthz_while(
                cloud.session, cloud.base, post_raw(cloud, path, document))
            assert status == 400, (path, document[:40], body)
            assert isinstance(body, dict) and key in body, (path, body)
            assert worst < LOOP_BUDGET, (path, document[:40], worst)


async def test_name_filter_is_a_regex_with_bounded_cost(cloud: Cloud) -> None:
    """`^(a+)+$` over 'aaa...ab' backtracks 2^n times in Python's re: seconds at n = 27."""
    names = ["a" * 27 + "b", "a" * 27, "other"]
    for name in names:
        status, body, _ = await cloud.call("POST", S, json={"server": {
            "name": name, "imageRef": BOOT_IMAGE, "flavorRef": "1"}})
        assert status == 202, body
    (status, body, _), worst = await healthz_while(
        cloud.session, cloud.base, cloud.call("GET", S + "?name=^(a%2B)%2B$"))
    assert status == 200, body
    assert [s["name"] for s in body["servers"]] == ["a" * 27]
    assert worst < LOOP_BUDGET, worst
    # Nova's meaning is kept: a regular expression searched anywhere in the name.
    status, body, _ = await cloud.call("GET", S + "/detail?name=a{27}b|^oth")
    assert status == 200, body
    assert sorted(s["name"] for s in body["servers"]) == sorted(["a" * 27 + "b", "other"])


async def test_invalid_or_oversized_name_pattern_is_400(cloud: Cloud) -> None:
    for pattern in ["(", "a)", "[z-a]", "(a)\\1", "x" * 600]:
        status, body, _ = await cloud.call("GET", S, params={"name": pattern})
        assert status == 400, (pattern, body)
        assert "Invalid name filter" in body["badRequest"]["message"]


async def test_query_integers_never_500(cloud: Cloud) -> None:
    for query in ["limit=" + "9" * 5000, "limit=²", "limit=-1"]:
        status, body, _ = await cloud.call("GET", f"{S}?{query}")
        assert status == 400, (query, body)
        status, body, _ = await cloud.call("GET", f"/image/v2/images?{query}")
        assert status == 400, (query, body)


async def test_nul_characters_and_digit_strings_never_reach_the_database(cloud: Cloud) -> None:
    """PostgreSQL's text refuses NUL, and int() refuses '²' and 4300+ digits: all are 400."""
    status, body = await post_raw(cloud, S, b'{"server": {"name": "a\\u0000b"}}')
    assert status == 400 and "NUL" in body["badRequest"]["message"], body
    status, body, _ = await cloud.call("GET", S, params={"name": "a\x00"})
    assert status == 400, body
    status, body, _ = await cloud.call("GET", "/image/v2/images", params={"name": "\x00"})
    assert status == 400 and body["code"] == 400, body
    quota_path = f"/compute/v2.1/os-quota-sets/{cloud.admin_project}"
    for value in ["9" * 5000, "²", "1" * 25]:
        status, body, _ = await cloud.call("PUT", quota_path, json={"quota_set": {"cores": value}})
        assert status == 400, (value, body)
    status, body, _ = await cloud.call("PUT", quota_path, json={"quota_set": {"cores": "30"}})
    assert status == 200 and body["quota_set"]["cores"] == 30, body


async def test_a_normal_request_still_works_after_refusals(cloud: Cloud) -> None:
    status, _ = await post_raw(cloud, S, deep(30_000))
    assert status == 400
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{cloud.base}/compute/v2.1/flavors",
                               headers={"X-Auth-Token": cloud.admin_token}) as resp:
            assert resp.status == 200
