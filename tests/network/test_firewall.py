"""Security groups on real iptables, a guest namespace and an outside namespace: a valid rule
opens its port; a rule stored before rules were checked never reaches iptables; a rule set the
host cannot load cuts its guests off (never leaves them open), `cloudd manage status` names the
host and the rule, and the next good rule set restores service."""

from __future__ import annotations

import logging
import subprocess
from pathlib import Path

import pytest
from harness.netlab import Lab, network_cloud, ping, serve_tcp, tcp_ok, teardown_host

from cloudd.agent.network.firewall import FirewallError, render_filter
from cloudd.api.hosthealth import ask_host
from cloudd.conductor.service import ConductorService
from cloudd.manage.status import check_rules, host_findings
from cloudd.network import hoststate, ipam, secgroups
from cloudd.network.service import NetworkService
from cloudd.rpc import RpcError
from cloudd.rpc.contracts.network import FirewallRule, HostNetworkState
from cloudd.vocab.secgroup_rules import parse_rule

from .test_dhcp_nat import vif

pytestmark = pytest.mark.slow
INJECTED = "10.0.0.0/8\n-A cloudd-FORWARD -j ACCEPT"


def filter_rules() -> str:
    return subprocess.run(["iptables", "-t", "filter", "-S"], capture_output=True, text=True,
                          check=True).stdout


def with_rule(state: HostNetworkState, rule: FirewallRule) -> HostNetworkState:
    """The state plus a rule that never went through validation (as a bug or an old row would)."""
    guest = state.firewalls[0]
    return state.model_copy(update={"firewalls": [
        guest.model_copy(update={"rules": [*guest.rules, rule]})]})


async def test_rules_fail_closed_and_status_names_host_and_rule(
        lab: Lab, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    bridge, public = f"brw{lab.tag}", f"cdp{lab.tag}"
    servers: list[subprocess.Popen[bytes]] = []
    async with network_cloud(tmp_path, "FlatDHCPManager", flat_network_bridge=bridge,
                             public_interface=public) as cloud:
        try:
            outside, _ = await lab.outside("198.51.100.1", "198.51.100.2")
            await ipam.create_networks(cloud.db, "FlatDHCPManager", "private", "10.233.7.0/24",
                                       bridge=bridge)
            rows, _ = await cloud.boot(name="web")
            uuid = rows[0]["uuid"]
            await cloud.wait_state(uuid, "active")
            ip = await lab.guest("a", bridge, (await vif(cloud, uuid))["mac"])
            guest, host = lab.namespaces[1], cloud.agent.host_name
            servers += [serve_tcp(guest, 8080), serve_tcp(guest, 8081)]
            network = cloud.host.get(NetworkService)
            conductor = cloud.host.get(ConductorService)

            # A valid rule opens its port, and only that one.
            group = await secgroups.get_group(cloud.db, "default", "p1")
            await network.add_security_group_rule(group, parse_rule("tcp", 8080, 8080))
            assert await tcp_ok(outside, ip, 8080)
            assert not await tcp_ok(outside, ip, 8081)
            assert await ping(guest, "198.51.100.2")

            # A row written before the checks existed is left out, logged; nothing injected.
            await cloud.db.execute(
                "INSERT INTO security_group_rules (uuid, parent_group_id, protocol, from_port,"
                " to_port, cidr, group_id, created_at) VALUES ('old-bad-rule', $1, 'tcp', 8081,"
                " 8081, $2, NULL, 0)", group.id, INJECTED)
            with caplog.at_level(logging.ERROR, "cloudd.network.hoststate"):
                await network.refresh_host(host)
            assert any("old-bad-rule" in r.getMessage() and uuid in r.getMessage()
                       for r in caplog.records)
            assert "-A cloudd-FORWARD -j ACCEPT" not in filter_rules()
            [stale] = await check_rules(cloud.db)  # and status tells the operator
            assert stale.subject == "security group rule old-bad-rule" and "Invalid cidr" in \
                stale.message
            assert await tcp_ok(outside, ip, 8080) and not await tcp_ok(outside, ip, 8081)

            # The agent re-validates what it is sent: a bad rule over RPC changes nothing.
            before = filter_rules()
            state = await hoststate.host_state(cloud.db, cloud.cfg, host)
            injected = with_rule(state, FirewallRule.model_construct(
                protocol="tcp", from_port=8081, to_port=8081, cidr=INJECTED))
            with pytest.raises(RpcError):
                await (await conductor.network_client(host)).apply_state(injected)
            assert filter_rules() == before

            # A rule set iptables refuses: the guest is cut off both ways, status says why.
            refused = with_rule(state, FirewallRule.model_construct(
                protocol="tcp", from_port=8081, to_port=8081, cidr="999.999.999.999/99"))
            with pytest.raises(FirewallError):
                await cloud.agent.network.apply(refused)
            assert not await tcp_ok(outside, ip, 8080), "a refused rule set left the guest open"
            assert not await ping(guest, "198.51.100.2")
            failures = [f for f in host_findings(await ask_host(conductor, host))
                        if f.level == "fail"]
            assert len(failures) == 1 and failures[0].subject == f"host {host}"
            assert "999.999.999.999/99" in failures[0].message and uuid in failures[0].message

            # The next good rule set restores service and clears the report.
            await network.refresh_host(host)
            assert await tcp_ok(outside, ip, 8080) and await ping(guest, "198.51.100.2")
            assert not [f for f in host_findings(await ask_host(conductor, host))
                        if f.level == "fail"]
        finally:
            for server in servers:
                server.kill()
            teardown_host(Path(cloud.cfg.default.state_dir), [bridge])


def test_every_valid_rule_loads(lab: Lab) -> None:
    """Edge values the model accepts are all accepted by iptables (checked in a namespace of
    its own, so the host's rules are untouched): validation never lets through a rule set that
    would make a host fail closed."""
    rules = [parse_rule(*values).for_source(cidr) for values, cidr in [
        (("tcp", 1, 65535), "0.0.0.0/0"), (("udp", 53, 53), "10.1.2.3/32"),
        (("icmp", -1, -1), "192.0.2.0/24"), (("icmp", 0, 0), "0.0.0.0/0"),
        (("icmp", 255, 255), "198.51.100.0/25"), (("icmp", 8, None), "0.0.0.0/0"),
        ((None, None, None), "10.0.0.0/8"), (("tcp", None, None), "172.16.0.0/12")]]
    state = HostNetworkState.model_validate({"manager": "FlatDHCPManager", "firewalls": [{
        "uuid": "0b5d2c1e-0000-4000-8000-000000000001", "ip": "10.233.8.5",
        "mac": "fa:16:3e:00:00:01", "bridge": "brtest0", "rules": [r.model_dump() for r in rules]}]})
    text = "\n".join(render_filter(state)) + "\n"
    namespace = f"cdt{lab.tag}fw"
    subprocess.run(["ip", "netns", "add", namespace], check=True)
    lab.namespaces.append(namespace)
    loaded = subprocess.run(["ip", "netns", "exec", namespace, "iptables-restore", "--noflush"],
                            input=text, capture_output=True, text=True)
    assert loaded.returncode == 0, (loaded.stderr, text)
    shown = subprocess.run(["ip", "netns", "exec", namespace, "iptables", "-S", "cloudd-i-0"],
                           capture_output=True, text=True, check=True).stdout
    assert shown.count("-j ACCEPT") == len(rules) + 1  # each rule, and established traffic
