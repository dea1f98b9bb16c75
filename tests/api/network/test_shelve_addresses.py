"""A shelved server's fixed IP stays its own while it is offloaded (no host serves it then,
as a Neutron port keeps its address while unbound) and is served again after the unshelve."""

from __future__ import annotations

from harness.api import ApiCloud, active_server, wait_status

from cloudd.network import store

from .test_server_ip_filter import fixed_ipv4

S = "/compute/v2.1/servers"


async def served_by(cloud: ApiCloud, host: str) -> list[str]:
    return [row.instance_uuid for row in await store.host_guest_addresses(cloud.db, host)]


async def test_offloaded_server_keeps_its_address(netcloud: ApiCloud) -> None:
    cloud = netcloud
    server = await active_server(cloud, "keeps-ip")
    address, host = fixed_ipv4(server), server["OS-EXT-SRV-ATTR:host"]
    assert server["id"] in await served_by(cloud, host)
    code, _, _ = await cloud.call("POST", f"{S}/{server['id']}/action", json={"shelve": None})
    assert code == 202
    offloaded = await wait_status(cloud, server["id"], "SHELVED_OFFLOADED")
    assert fixed_ipv4(offloaded) == address
    assert server["id"] not in await served_by(cloud, host)  # no anti-spoofing port, no NAT
    code, _, _ = await cloud.call("POST", f"{S}/{server['id']}/action", json={"unshelve": None})
    assert code == 202
    back = await wait_status(cloud, server["id"], "ACTIVE")
    assert fixed_ipv4(back) == address
    assert server["id"] in await served_by(cloud, back["OS-EXT-SRV-ATTR:host"])


async def test_deleting_an_offloaded_server_frees_its_address_at_once(netcloud: ApiCloud) -> None:
    """No host destroys an offloaded server's guest, so the delete itself frees its fixed IP
    and its security group memberships (tempest then deletes the project's default group)."""
    cloud = netcloud
    server = await active_server(cloud, "gone-ip")
    address = fixed_ipv4(server)
    await cloud.call("POST", f"{S}/{server['id']}/action", json={"shelve": None})
    await wait_status(cloud, server["id"], "SHELVED_OFFLOADED")
    code, _, _ = await cloud.call("DELETE", f"{S}/{server['id']}")
    assert code == 204
    await wait_status(cloud, server["id"], "DELETED")
    allocated = await cloud.db.fetchval("SELECT allocated FROM fixed_ips WHERE address = $1",
                                        address)
    assert allocated == 0
    code, body, _ = await cloud.call("GET", "/network/v2.0/security-groups?name=default")
    (group,) = [g for g in body["security_groups"] if g["project_id"] == server["tenant_id"]]
    code, body, _ = await cloud.call("DELETE", f"/network/v2.0/security-groups/{group['id']}")
    assert code == 204, body
