"""A bounded fuzzing pass: random JSON bodies and query strings against the main compute routes.

No request may cause a 500, and every error must be in Nova's format. Hypothesis runs in a worker
thread with a plain HTTP client while the cloud serves on the test's event loop.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request
from typing import Any

from harness.api import ApiCloud as Cloud
from harness.api import wait_status
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cloudd.api.compute.errors import _FAULT_NAMES

from .test_quotas import server_request

FAULTS = {*_FAULT_NAMES.values(), "computeFault"}
# Field names the routes know, so that bodies often get past the first level of validation.
KEYS = ["server", "name", "imageRef", "flavorRef", "min_count", "max_count", "metadata",
        "networks", "key_name", "user_data", "availability_zone", "block_device_mapping_v2",
        "uuid", "boot_index", "source_type", "accessIPv4", "accessIPv6", "description",
        "os:scheduler_hints", "group", "flavor", "ram", "vcpus", "disk", "id", "swap",
        "os-flavor-access:is_public", "keypair", "public_key", "type", "quota_set",
        "instances", "cores", "force", "reboot", "os-stop", "resize", "rebuild", "lock",
        "os-getConsoleOutput", "length", "addTenantAccess", "tenant", "server_group",
        "policies", "policy", "rules", "max_server_per_host", "extra_specs", "tags"]
SCALARS = (st.none() | st.booleans() | st.integers(min_value=-2**70, max_value=2**70)
           | st.floats(allow_nan=False) | st.text(max_size=12)
           | st.sampled_from(["1", "m1.tiny", "auto", "none", "SOFT", "HARD", "-1", "",
                              "affinity", "anti-affinity", "2020-01-01T00:00:00", "ssh-rsa x"]))
JSON = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3)
    | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=8), inner, max_size=4),
    max_leaves=10)
QUERY_KEYS = ["limit", "marker", "name", "status", "changes-since", "all_tenants", "flavor",
              "image", "is_public", "minRam", "minDisk", "start", "end", "detailed",
              "all_projects", "offset", "tenant_id", "user_id", "host"]
QUERY = st.dictionaries(st.sampled_from(QUERY_KEYS), st.text(max_size=20)
                        | st.sampled_from(["-1", "0", "1", "True", "2020-01-01", "x" * 40]),
                        max_size=4)


def check_response(method: str, path: str, status: int, raw: bytes) -> None:
    assert status < 500, f"{method} {path} -> {status}: {raw[:300]!r}"
    if status >= 400:
        body = json.loads(raw)
        assert isinstance(body, dict) and len(body) == 1, (method, path, body)
        (name, fault), = body.items()
        assert name in FAULTS and fault["code"] == status, (method, path, body)
        assert isinstance(fault["message"], str) and fault["message"], (method, path, body)


def call(base: str, token: str, method: str, path: str, body: Any = None,
         raw: bytes | None = None) -> None:
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    request = urllib.request.Request(base + path, data=data, method=method, headers={
        "X-Auth-Token": token, "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:
            status, content = resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        status, content = exc.code, exc.read()
    check_response(method, path, status, content)


def fuzz(base: str, token: str, server_id: str, project_id: str) -> None:
    v = "/compute/v2.1"
    body_routes = [("POST", f"{v}/servers"), ("PUT", f"{v}/servers/{server_id}"),
                   ("POST", f"{v}/servers/{server_id}/action"), ("POST", f"{v}/flavors"),
                   ("POST", f"{v}/flavors/1/action"), ("POST", f"{v}/os-keypairs"),
                   ("PUT", f"{v}/os-quota-sets/{project_id}"), ("POST", f"{v}/os-server-groups"),
                   ("POST", f"{v}/servers/{server_id}/metadata"),
                   ("POST", f"{v}/flavors/1/os-extra_specs")]
    query_routes = [f"{v}/servers", f"{v}/servers/detail", f"{v}/flavors/detail",
                    f"{v}/os-simple-tenant-usage", f"{v}/os-simple-tenant-usage/{project_id}",
                    f"{v}/limits", f"{v}/os-server-groups", f"{v}/os-keypairs",
                    f"{v}/os-quota-sets/{project_id}/detail"]

    @settings(max_examples=200, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(route=st.sampled_from(body_routes), body=JSON, query_route=st.sampled_from(query_routes),
           query=QUERY, junk=st.binary(max_size=20))
    def one(route: tuple[str, str], body: Any, query_route: str, query: dict[str, str],
            junk: bytes) -> None:
        method, path = route
        call(base, token, method, path, body)
        wrapped = {"server": body} if path.endswith("/servers") else body
        call(base, token, method, path, wrapped)
        call(base, token, method, path, raw=junk)
        call(base, token, "GET", query_route + "?" + urllib.parse.urlencode(query))

    one()


async def test_no_request_causes_a_500(cloud: Cloud) -> None:
    code, body, _ = await cloud.call("POST", "/compute/v2.1/servers",
                                     json=await server_request(cloud, "target"))
    assert code == 202
    server_id = body["server"]["id"]
    await wait_status(cloud, server_id, "ACTIVE")
    started = time.monotonic()
    await asyncio.to_thread(fuzz, cloud.base, cloud.admin_token, server_id, cloud.admin_project)
    assert time.monotonic() - started < 60
