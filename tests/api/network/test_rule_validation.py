"""Security-group rule values that once went verbatim into every host's iptables-restore input
(issue 14): the legacy Compute API at 2.1 and the Network API through openstacksdk both refuse
them with 400 in their own format, and nothing is stored."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import openstack
from harness.api import ApiCloud as Cloud

NEWLINE_CIDR = "10.0.0.0/8\n-A cloudd-FORWARD -j ACCEPT"
# (protocol, from, to, cidr) -> what the refusal must say
BAD_RULES = [
    (("tcp", 22, 22, "999.999.999.999/99"), "Invalid cidr"),
    (("tcp", 22, 22, NEWLINE_CIDR), "Invalid cidr"),
    (("tcp", 22, 22, "::/0"), "Invalid cidr"),
    (("tcp", 70000, 70000, "0.0.0.0/0"), "Invalid port range"),
    (("udp", -5, 22, "0.0.0.0/0"), "Invalid port range"),
    (("tcp", 90, 80, "0.0.0.0/0"), "Invalid port range"),
    (("icmp", 300, -1, "0.0.0.0/0"), "Invalid ICMP type:code"),
    (("icmp", -1, 3, "0.0.0.0/0"), "A code needs a type"),
    (("gre", None, None, "0.0.0.0/0"), "Invalid IP protocol"),
]


async def _rule_count(cloud: Cloud) -> int:
    return int(await cloud.db.fetchval("SELECT count(*) FROM security_group_rules"))


async def test_legacy_api_refuses_bad_rules(netcloud: Cloud) -> None:
    code, body, _ = await netcloud.call("GET", "/compute/v2.1/os-security-groups", version="2.1")
    (group,) = body["security_groups"]
    before = await _rule_count(netcloud)
    for (protocol, low, high, cidr), reason in BAD_RULES:
        code, body, _ = await netcloud.call(
            "POST", "/compute/v2.1/os-security-group-rules", version="2.1",
            json={"security_group_rule": {"parent_group_id": group["id"], "ip_protocol": protocol,
                                          "from_port": low, "to_port": high, "cidr": cidr}})
        assert code == 400, (protocol, low, high, cidr, body)
        assert reason in body["badRequest"]["message"], body
    # Text that is not a number is refused too, not truncated or guessed.
    code, body, _ = await netcloud.call(
        "POST", "/compute/v2.1/os-security-group-rules", version="2.1",
        json={"security_group_rule": {"parent_group_id": group["id"], "ip_protocol": "tcp",
                                      "from_port": "22 -j ACCEPT", "to_port": 22}})
    assert code == 400 and "must be an integer" in body["badRequest"]["message"]
    assert await _rule_count(netcloud) == before

    # A valid rule is stored in its canonical form and shown as Nova shows it.
    code, body, _ = await netcloud.call(
        "POST", "/compute/v2.1/os-security-group-rules", version="2.1",
        json={"security_group_rule": {"parent_group_id": group["id"], "ip_protocol": "TCP",
                                      "from_port": "22", "to_port": 22, "cidr": "10.1.2.3/8"}})
    assert code == 200, body
    rule = body["security_group_rule"]
    assert (rule["ip_protocol"], rule["from_port"], rule["to_port"], rule["ip_range"]) == (
        "tcp", 22, 22, {"cidr": "10.0.0.0/8"})


async def test_network_api_refuses_bad_rules(netcloud: Cloud, tmp_path: Path) -> None:
    password = (tmp_path / "admin-password").read_text().strip()

    def attempts() -> tuple[list[tuple[int | None, str]], Any, list[str]]:
        conn = openstack.connect(
            auth_url=f"{netcloud.base}/identity", username="admin", password=password,
            project_name="admin", user_domain_name="Default", project_domain_name="Default",
            region_name="RegionOne", load_yaml_config=False, load_envvars=False)
        group = conn.network.create_security_group(name="checked", description="d")
        refusals = []
        for (protocol, low, high, cidr), _ in BAD_RULES:
            try:
                conn.network.create_security_group_rule(
                    security_group_id=group.id, direction="ingress", protocol=protocol,
                    port_range_min=low, port_range_max=high, remote_ip_prefix=cidr)
            except openstack.exceptions.HttpException as exc:
                refusals.append((exc.status_code, str(exc)))
            else:
                refusals.append((None, "accepted"))
        good = conn.network.create_security_group_rule(
            security_group_id=group.id, direction="ingress", protocol="icmp",
            port_range_min=8, remote_ip_prefix="192.0.2.7/24")
        stored = [r.id for r in conn.network.security_group_rules(security_group_id=group.id)]
        return refusals, good, stored

    refusals, good, stored = await asyncio.to_thread(attempts)
    for (status, text), (_, reason) in zip(refusals, BAD_RULES, strict=True):
        assert status == 400, text
        assert "Invalid input for" in text and reason in text, text
    assert stored == [good.id]  # the one good rule is all that was stored
    assert (good.protocol, good.port_range_min, good.port_range_max, good.remote_ip_prefix) == (
        "icmp", 8, None, "192.0.2.0/24")


async def test_network_api_error_types(netcloud: Cloud) -> None:
    code, body, _ = await netcloud.call("GET", "/network/v2.0/security-groups")
    group = body["security_groups"][0]["id"]
    cases: list[tuple[dict[str, object], str]] = [
             ({"protocol": "tcp", "port_range_min": 70000, "port_range_max": 70000},
              "SecurityGroupInvalidPortValue"),
             ({"protocol": "tcp", "port_range_min": 90, "port_range_max": 80},
              "SecurityGroupInvalidPortRange"),
             ({"protocol": "icmp", "port_range_min": 300}, "SecurityGroupInvalidIcmpValue"),
             ({"protocol": "tcp", "remote_ip_prefix": "999.999.999.999/99"}, "InvalidInput"),
             ({"protocol": "sctp"}, "SecurityGroupRuleInvalidProtocol")]
    for extra, kind in cases:
        code, body, _ = await netcloud.call("POST", "/network/v2.0/security-group-rules", json={
            "security_group_rule": {"security_group_id": group, "direction": "ingress", **extra}})
        assert (code, body["NeutronError"]["type"]) == (400, kind), body


async def test_only_an_admin_deletes_a_default_group(netcloud: Cloud) -> None:
    """Neutron's rule (tempest's credential clean-up relies on it): a project's member cannot
    delete its default group, an admin can (as when the project is torn down)."""
    token, project_id = await netcloud.user_token("tenant-sg", ("member",))
    code, body, _ = await netcloud.call("GET", "/network/v2.0/security-groups", token=token)
    assert code == 200
    (group,) = [g for g in body["security_groups"] if g["name"] == "default"]
    code, body, _ = await netcloud.call("DELETE", f"/network/v2.0/security-groups/{group['id']}",
                                        token=token)
    assert code == 409 and "default security group" in body["NeutronError"]["message"], body
    code, _, _ = await netcloud.call("DELETE", f"/network/v2.0/security-groups/{group['id']}")
    assert code == 204
    assert not await netcloud.db.fetchval(
        "SELECT count(*) FROM security_groups WHERE uuid = $1", group["id"])
    # The legacy Compute API keeps nova-network's rule: never, not even for an admin.
    code, body, _ = await netcloud.call("GET", "/compute/v2.1/os-security-groups", version="2.1",
                                        token=token)
    (legacy,) = body["security_groups"]  # listing made the project a new default group
    code, _, _ = await netcloud.call("DELETE", f"/compute/v2.1/os-security-groups/{legacy['id']}",
                                     version="2.1")
    assert code == 400, project_id
