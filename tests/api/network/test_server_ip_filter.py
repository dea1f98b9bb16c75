"""The server list's ip and ip6 filters (Nova's: regular expressions matched from the start
of an address) on servers with fixed IPs of the FlatManager network."""

from __future__ import annotations

from typing import Any

from harness.api import ApiCloud, active_server
from harness.api import listed_names as names


def fixed_ipv4(server: dict[str, Any]) -> str:
    found = [a["addr"] for net in server["addresses"].values() for a in net if a["version"] == 4]
    assert found, server["addresses"]
    return str(found[0])


async def test_ip_filters_match_from_the_start(netcloud: ApiCloud) -> None:
    cloud = netcloud
    first, second = await active_server(cloud, "ip-a"), await active_server(cloud, "ip-b")
    address = fixed_ipv4(first)
    assert await names(cloud, f"ip={address}") == ["ip-a"]
    assert sorted(await names(cloud, "ip=" + address.rsplit(".", 1)[0])) == ["ip-a", "ip-b"]
    tail = address.split(".", 1)[1]
    assert await names(cloud, f"ip={tail}") == []  # not anchored at the start: no match
    assert await names(cloud, "ip6=.*") == []  # no IPv6 addresses here
    assert fixed_ipv4(second) != address
    code, body, _ = await cloud.call("GET", "/compute/v2.1/servers?ip=(a")
    assert code == 400 and "ip filter" in body["badRequest"]["message"]


