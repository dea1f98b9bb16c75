"""dnsmasq killed (SIGKILL) while servers are being booted on a real FlatDHCP network, then again
while nothing changes: the agent starts it again each time, every server's MAC→IP is still in its
hosts file and served (a guest namespace with the server's MAC gets the server's address), the
lease a guest held survives, and `cloudd manage status` is healthy again."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest
from harness.cloud import Cloud, wait_for
from harness.netlab import Lab, ash, lab, network_cloud, teardown_host  # noqa: F401  # fixture

from cloudd.cli import main
from cloudd.identity.bootstrap import bootstrap
from cloudd.network import ipam
from cloudd.rpc.contracts.network import device_name

pytestmark = pytest.mark.slow
BOOTS = 8  # booted one after another while dnsmasq is killed


async def dnsmasq_pid(cloud: Cloud, bridge: str, not_pid: int | None = None,
                      limit: float = 15) -> int:
    """The pid of the bridge's live dnsmasq (other than ``not_pid``), once there is one."""
    dnsmasq = cloud.agent.network.dnsmasq
    found: list[int] = []

    async def running() -> bool:
        pid = await asyncio.to_thread(dnsmasq.running_pid, bridge)
        if pid is None or pid == not_pid:
            return False
        found.append(pid)
        return True

    await wait_for(running, limit, f"a dnsmasq for {bridge} other than {not_pid}")
    return found[-1]


async def nic(cloud: Cloud, uuid: str) -> tuple[str, str, str]:
    """(MAC, fixed IP, port device) of the server's one interface."""
    row = await cloud.db.fetchrow(
        "SELECT v.uuid AS vif_uuid, v.address AS mac, f.address AS ip FROM virtual_interfaces v"
        " JOIN fixed_ips f ON f.virtual_interface_id = v.id WHERE v.instance_uuid = $1", uuid)
    assert row is not None, f"{uuid} got no fixed IP"
    return str(row["mac"]), str(row["ip"]), device_name(row["vif_uuid"])


def host_entries(hosts_file: Path) -> set[tuple[str, str]]:
    """(MAC, IP) of each line of dnsmasq's hosts file (``MAC,hostname,IP``)."""
    lines = hosts_file.read_text().splitlines()
    return {(line.split(",")[0], line.split(",")[-1]) for line in lines if line}


async def renew(ns: str, script: Path) -> str:
    """A DHCP exchange from a guest namespace again; the address it ends with."""
    await ash("ip", "netns", "exec", ns, "busybox", "udhcpc", "-i", "eth0", "-n", "-q", "-t", "10",
              "-T", "1", "-s", str(script), limit=30)
    out = (await ash("ip", "-n", ns, "-4", "-o", "addr", "show", "dev", "eth0")).stdout
    return out.split()[3].split("/")[0]


async def manage_status(cloud: Cloud, tmp_path: Path,
                        capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """`cloudd manage status` as an operator on the controller runs it."""
    cfg = cloud.cfg
    conf = tmp_path / "status.conf"
    conf.write_text(f"[DEFAULT]\nstate_dir = {cfg.default.state_dir}\n"
                    f"[database]\nconnection = {cfg.database.connection}\n"
                    f"[api]\npublic_url = {cfg.api.public_url}\n"
                    f"[service]\nservice_down_time = {cfg.service.service_down_time}\n")
    capsys.readouterr()
    code = await asyncio.to_thread(main, ["--config", str(conf), "manage", "status"])
    return code, capsys.readouterr().out


async def test_dnsmasq_killed_under_load_is_respawned_with_its_hosts_and_leases(
        lab: Lab, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: F811
    bridge = f"brk{lab.tag}"
    async with network_cloud(tmp_path, "FlatDHCPManager", flat_network_bridge=bridge) as cloud:
        state_dir = Path(cloud.cfg.default.state_dir)
        hosts_file = cloud.agent.network.dnsmasq.files(bridge)["conf"]
        try:
            await bootstrap(cloud.db, state_dir)
            await ipam.create_networks(cloud.db, "FlatDHCPManager", "private", "10.231.91.0/24",
                                       bridge=bridge)
            first = (await cloud.boot(name="first"))[0][0]["uuid"]
            await cloud.wait_state(first, "active")
            first_pid = await dnsmasq_pid(cloud, bridge)
            mac, ip, device = await nic(cloud, first)
            assert await lab.guest("a", bridge, mac, device) == ip  # a guest holds a lease

            # Killed while the boots go on: each boot changes the hosts file (and HUPs dnsmasq).
            uuids = [first]
            for number in range(BOOTS):
                uuids.append((await cloud.boot(name=f"vm{number}"))[0][0]["uuid"])
                if number == BOOTS // 2:
                    os.kill(first_pid, signal.SIGKILL)
                await asyncio.sleep(0.1)
            for uuid in uuids:
                await cloud.wait_state(uuid, "active", limit=30)
            respawned = await dnsmasq_pid(cloud, bridge, not_pid=first_pid)
            nics = [await nic(cloud, uuid) for uuid in uuids]
            assert {(m, i) for m, i, _ in nics} <= host_entries(hosts_file)
            last_mac, last_ip, last_device = nics[-1]
            assert await lab.guest("b", bridge, last_mac, last_device) == last_ip

            # Killed while nothing changes: no apply comes to start it, the agent's watch does.
            os.kill(respawned, signal.SIGKILL)
            final = await dnsmasq_pid(cloud, bridge, not_pid=respawned)
            assert {(m, i) for m, i, _ in nics} <= host_entries(hosts_file)
            assert await renew(lab.namespaces[0], lab.script) == ip  # the first guest renews
            middle_mac, middle_ip, middle_device = nics[BOOTS // 2]
            assert await lab.guest("c", bridge, middle_mac, middle_device) == middle_ip
            leases = cloud.agent.network.dnsmasq.files(bridge)["leases"].read_text()
            assert all(f" {m} {i} " in leases for m, i in ((mac, ip), (last_mac, last_ip),
                                                             (middle_mac, middle_ip))), leases

            code, out = await manage_status(cloud, tmp_path, capsys)
            assert code == 0, out
            assert f"dnsmasq running for private (pid {final})" in out
        finally:
            teardown_host(state_dir, [bridge])
