"""Server migrations (2.22-2.24, admin): no live migration is ever in progress in cloudd, so the
list is empty, a migration is not found, and force_complete and abort are 409 as for any
server that is not migrating; each call is 404 below its microversion."""

from __future__ import annotations

from harness.api import ApiCloud as Cloud
from harness.api import active_server

S = "/compute/v2.1/servers"


async def test_server_migrations(cloud: Cloud) -> None:
    server_id = (await active_server(cloud, "still"))["id"]
    base = f"{S}/{server_id}/migrations"
    code, body, _ = await cloud.call("GET", base, version="2.23")
    assert code == 200 and body == {"migrations": []}
    assert (await cloud.call("GET", base, version="2.22"))[0] == 404
    code, body, _ = await cloud.call("GET", f"{base}/1", version="2.23")
    assert code == 404 and list(body) == ["itemNotFound"]
    code, body, _ = await cloud.call("POST", f"{base}/1/action", version="2.22",
                                     json={"force_complete": None})
    assert code == 409 and list(body) == ["conflictingRequest"], body
    assert (await cloud.call("POST", f"{base}/1/action", version="2.21",
                             json={"force_complete": None}))[0] == 404
    code, body, _ = await cloud.call("POST", f"{base}/1/action", version="2.22",
                                     json={"bogus": None})
    assert code == 400
    code, body, _ = await cloud.call("DELETE", f"{base}/1", version="2.24")
    assert code == 409 and list(body) == ["conflictingRequest"], body
    assert (await cloud.call("DELETE", f"{base}/1", version="2.23"))[0] == 404
    member, _ = await cloud.user_token("migrations-member", ("member", "reader"))
    code, body, _ = await cloud.call("GET", base, token=member, version="2.23")
    assert code == 403  # Nova's policy: admins only
    code, _, _ = await cloud.call("GET", f"{S}/8a3c1d2e-0000-4000-8000-00000000ffff/migrations",
                                  version="2.23")
    assert code == 404
