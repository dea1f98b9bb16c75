"""Version documents, microversion negotiation, request ids and Nova-shaped errors."""

from __future__ import annotations

from typing import Any as Cloud


async def test_version_documents_need_no_token(cloud: Cloud) -> None:
    status, body, _ = await cloud.call("GET", "/compute/", token="")
    assert status == 200
    assert [v["id"] for v in body["versions"]] == ["v2.0", "v2.1"]
    assert body["versions"][1]["version"] == "2.48"
    for path in ("/compute/v2.1", "/compute/v2.1/", "/compute/v2/"):
        status, body, _ = await cloud.call("GET", path, token="")
        assert status == 200, path
        assert set(body["version"]) == {"id", "links", "status", "updated", "version",
                                        "min_version", "media-types"}
    status, body, _ = await cloud.call("GET", "/compute/v2.1", token="")
    assert body["version"]["id"] == "v2.1" and body["version"]["min_version"] == "2.1"


async def test_microversion_echo_and_errors(cloud: Cloud) -> None:
    status, _, headers = await cloud.call("GET", "/compute/v2.1/flavors", version="2.30")
    assert status == 200
    assert headers["OpenStack-API-Version"] == "compute 2.30"
    assert headers["X-OpenStack-Nova-API-Version"] == "2.30"
    assert "OpenStack-API-Version" in headers["Vary"]
    _, _, headers = await cloud.call("GET", "/compute/v2.1/flavors")
    assert headers["X-OpenStack-Nova-API-Version"] == "2.1"
    _, _, headers = await cloud.call("GET", "/compute/v2.1/flavors",
                                     headers={"OpenStack-API-Version": "compute latest"})
    assert headers["OpenStack-API-Version"] == "compute 2.48"
    status, body, _ = await cloud.call("GET", "/compute/v2.1/flavors", version="2.95")
    assert status == 406
    assert body["computeFault"]["message"] == (
        "Version 2.95 is not supported by the API. Minimum is 2.1 and maximum is 2.48.")
    status, body, _ = await cloud.call("GET", "/compute/v2.1/flavors", version="2.x")
    assert status == 400 and "invalid format" in body["badRequest"]["message"]


async def test_request_ids_on_success_and_errors(cloud: Cloud) -> None:
    for path, token, expected in (("/compute/v2.1/flavors", None, 200),
                                  ("/compute/v2.1/servers/nope", None, 404),
                                  ("/compute/v2.1/no-such-thing", None, 404),
                                  ("/compute/v2.1/servers", "bad-token", 401)):
        status, body, headers = await cloud.call("GET", path, token=token)
        assert status == expected, path
        rid = headers["X-OpenStack-Request-ID"]
        assert rid.startswith("req-") and headers["X-Compute-Request-Id"] == rid
    status, body, _ = await cloud.call("GET", "/compute/v2.1/servers/nope")
    assert body == {"itemNotFound": {"code": 404, "message": "Instance nope could not be found."}}
    status, body, _ = await cloud.call("GET", "/compute/v2.1/servers", token="bad-token")
    assert body["unauthorized"]["code"] == 401
    status, body, _ = await cloud.call("PATCH", "/compute/v2.1/servers")
    assert status == 405 and body["badMethod"]["code"] == 405
