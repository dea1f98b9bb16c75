"""The networking a newcomer gets without asking: `cloudd manage bootstrap` creates the default
network and floating pool once (or not at all when turned off, or refuses ranges the host
uses), and each project gets its own network, on its own real bridge, at its first server."""

from __future__ import annotations

import asyncio
import contextlib
import random
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from harness.api import BOOT_IMAGE, running_cloud
from harness.api import ApiCloud as Cloud
from harness.netlab import Lab, ash, sh, teardown_host

from cloudd.config import CloudConfig
from cloudd.db import Database
from cloudd.network import defaults

ROOT = Path(__file__).resolve().parents[2]


def ranges() -> dict[str, str]:
    """A bridge name and ranges no other test (nor this machine) uses."""
    octet = random.randint(160, 199)
    return {"flat_network_bridge": f"brd{random.randint(0, 0xFFFF):04x}",
            "fixed_range": f"10.{octet}.0.0/16", "floating_range": f"10.{octet + 40}.7.0/28"}


def manage(conf: Path, state: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cloudd", "--config", str(conf), "--state-dir", str(state),
         "manage", *args, *(["--clouds-yaml", str(state / "clouds.yaml")]
                            if args == ("bootstrap",) else [])],
        cwd=ROOT, capture_output=True, text=True, timeout=120)


def write_conf(tmp_path: Path, network: dict[str, str]) -> Path:
    conf = tmp_path / "cloudd.conf"
    conf.write_text("[compute]\ncompute_driver = fake\n\n[network]\n"
                    + "".join(f"{key} = {value}\n" for key, value in network.items()))
    return conf


def db_rows(state: Path, query: str) -> list[tuple[Any, ...]]:
    import sqlite3

    with contextlib.closing(sqlite3.connect(state / "cloudd.db")) as conn:
        return list(conn.execute(query).fetchall())


def test_bootstrap_creates_the_network_and_pool_once(tmp_path: Path) -> None:
    net = ranges()
    conf, state = write_conf(tmp_path, net), tmp_path / "state"
    first = manage(conf, state, "bootstrap")
    assert first.returncode == 0, first.stderr
    block = net["fixed_range"].replace(".0.0/16", ".0.0/24")
    bridge = net["flat_network_bridge"]
    assert f"network private: {block} on {bridge} (project admin), FlatDHCPManager" in first.stdout
    assert f"floating pool nova: {net['floating_range']}, 14 addresses" in first.stdout
    query = ("SELECT n.uuid, n.cidr, n.bridge, p.name FROM networks n"
             " JOIN projects p ON p.id = n.project_id")
    networks = db_rows(state, query)
    assert [row[1:] for row in networks] == [(block, bridge, "admin")]
    pool = "SELECT pool, count(*), min(project_id) FROM floating_ips GROUP BY pool"
    assert db_rows(state, pool) == [("nova", 14, None)]

    second = manage(conf, state, "bootstrap")  # make run at every start: nothing changes
    assert second.returncode == 0, second.stderr
    assert "none created" in second.stdout and "floating pool nova: exists" in second.stdout
    assert db_rows(state, query) == networks and db_rows(state, pool) == [("nova", 14, None)]

    shown = manage(conf, state, "network")
    assert shown.returncode == 0, shown.stderr
    line = next(li for li in shown.stdout.splitlines() if li.startswith(networks[0][0]))
    assert line.split() == [networks[0][0], "private", block, bridge, "-", "admin", "-", "0", "253"]
    prefix = net["floating_range"].rsplit(".", 1)[0]
    pool_line = next(li for li in shown.stdout.splitlines() if li.startswith("nova "))
    assert pool_line.split() == ["nova", f"{prefix}.1-{prefix}.14", "(uplink)", "0", "0", "14"]


def test_default_network_turned_off_creates_nothing(tmp_path: Path) -> None:
    conf = write_conf(tmp_path, {**ranges(), "default_network": "false"})
    state = tmp_path / "state"
    result = manage(conf, state, "bootstrap")
    assert result.returncode == 0, result.stderr
    assert "network: none created ([network] default_network = false)" in result.stdout
    assert db_rows(state, "SELECT count(*) FROM networks") == [(0,)]
    assert db_rows(state, "SELECT count(*) FROM floating_ips") == [(0,)]


@pytest.mark.parametrize("option", ["fixed_range", "floating_range"])
def test_bootstrap_refuses_a_range_the_host_uses(lab: Lab, tmp_path: Path, option: str) -> None:
    net = ranges()
    taken = net[option].split("/")[0].rsplit(".", 1)[0] + ".1"  # an address inside the range
    bridge = f"brx{lab.tag}"
    lab.links.append(bridge)
    sh("ip", "link", "add", bridge, "type", "bridge")
    sh("ip", "addr", "add", f"{taken}/24", "dev", bridge)
    conf, state = write_conf(tmp_path, net), tmp_path / "state"
    result = manage(conf, state, "bootstrap")
    assert result.returncode == 2
    assert f"[network] {option} = {net[option]} overlaps this host's address {taken}/24 on " \
           f"{bridge}: set [network] {option} to a range the host does not use" in result.stderr
    assert db_rows(state, "SELECT count(*) FROM networks") == [(0,)]  # nothing half made
    assert db_rows(state, "SELECT count(*) FROM floating_ips") == [(0,)]


def test_bootstrap_of_a_fresh_state_takes_back_the_bridge_an_earlier_cloud_left(
        lab: Lab, tmp_path: Path) -> None:
    """`make run`, stop, delete the state directory, `make run`: the first cloud's agent left
    its bridge with the gateway address; the new cloud's bootstrap is not refused for it."""
    net = ranges()
    bridge = net["flat_network_bridge"]
    gateway = net["fixed_range"].replace(".0.0/16", ".0.1/24")
    for name in (bridge, f"{bridge}-1"):
        lab.links.append(name)
        sh("ip", "link", "add", name, "type", "bridge")
        sh("ip", "addr", "add", gateway if name == bridge else gateway.replace(".0.1/", ".1.1/"),
           "dev", name)
        sh("ip", "link", "set", name, "up")
    conf, state = write_conf(tmp_path, net), tmp_path / "state"
    result = manage(conf, state, "bootstrap")
    assert result.returncode == 0, result.stderr
    block = net["fixed_range"].replace(".0.0/16", ".0.0/24")
    assert f"network private: {block} on {bridge} (project admin)" in result.stdout


@contextlib.asynccontextmanager
async def networked_cloud(tmp_path: Path, net: dict[str, str]) -> AsyncIterator[Cloud]:
    """A controller + fake-driver agent whose network manager plumbs real bridges, after
    bootstrap's network step."""
    async def default_network(db: Database, cfg: CloudConfig, creds: dict[str, Any]) -> None:
        await defaults.ensure_default_network(db, cfg.network, creds["project_id"])

    try:
        async with running_cloud(tmp_path, prepare=default_network, network={
                **net, "metadata_proxy_port": "0", "metadata_host": "127.0.0.1"}) as cloud:
            yield cloud
    finally:
        bridges = [net["flat_network_bridge"]] + [f"{net['flat_network_bridge']}-{n}"
                                                  for n in (1, 2)]
        await asyncio.to_thread(teardown_host, tmp_path, bridges)


async def boot(cloud: Cloud, token: str, name: str, networks: Any = "auto") -> tuple[int, Any]:
    code, body, _ = await cloud.call("POST", "/compute/v2.1/servers", token, version="2.47", json={
        "server": {"name": name, "imageRef": BOOT_IMAGE, "flavorRef": "1", "networks": networks}})
    return code, body


async def addresses(cloud: Cloud, token: str, server: str) -> dict[str, Any]:
    for _ in range(100):
        _, body, _ = await cloud.call("GET", f"/compute/v2.1/servers/{server}", token)
        if body["server"]["status"] == "ACTIVE" and body["server"]["addresses"]:
            return dict(body["server"]["addresses"])
        assert body["server"]["status"] != "ERROR", body["server"].get("fault")
        await asyncio.sleep(0.2)
    raise AssertionError(f"{server} not ACTIVE with an address")


async def test_each_project_gets_its_own_network_at_first_boot(lab: Lab, tmp_path: Path) -> None:
    net = ranges()
    octets = net["fixed_range"].split(".")[:2]
    async with networked_cloud(tmp_path, net) as cloud:
        code, body = await boot(cloud, cloud.admin_token, "first")
        assert code == 202, body
        mine = await addresses(cloud, cloud.admin_token, body["server"]["id"])
        assert list(mine) == ["private"]
        assert mine["private"][0]["addr"].startswith(".".join(octets) + ".0.")

        token, _ = await cloud.user_token("tenant-b", ("member",))
        code, body = await boot(cloud, token, "b1")
        assert code == 202, body
        theirs = await addresses(cloud, token, body["server"]["id"])
        assert theirs["private"][0]["addr"].startswith(".".join(octets) + ".1.")
        code, body = await boot(cloud, token, "b2")  # the second server: the same network
        assert (await addresses(cloud, token, body["server"]["id"]))["private"][0]["addr"] \
            .startswith(".".join(octets) + ".1.")
        own_bridge = f"{net['flat_network_bridge']}-1"
        shown = await ash("ip", "-4", "-o", "addr", "show", "dev", own_bridge)
        assert f"{'.'.join(octets)}.1.1/24" in shown.stdout  # the gateway, on its own bridge

        _, listed, _ = await cloud.call("GET", "/network/v2.0/networks", token)
        subnets = {n["name"]: n for n in listed["networks"] if not n["router:external"]}
        assert len(subnets) == 1  # its own; the admin project's is not even listed
        _, admin_nets, _ = await cloud.call("GET", "/network/v2.0/networks")
        admin_net = next(n["id"] for n in admin_nets["networks"]
                         if n["project_id"] == cloud.admin_project)
        code, body = await boot(cloud, token, "b3", [{"uuid": admin_net}])
        assert code == 400 and "could not be found" in body["badRequest"]["message"]

        # Tenants make no networks, for themselves or anyone: only bootstrap and the operator.
        for path in ("/network/v2.0/networks", "/compute/v2.1/os-networks"):
            code, _, _ = await cloud.call("POST", path, token, json={"network": {
                "name": "mine", "project_id": cloud.admin_project, "cidr": "10.9.9.0/24"}})
            assert code in (404, 405), (path, code)
        rows = await cloud.db.fetch("SELECT project_id FROM networks WHERE deleted = 0")
        assert len(rows) == 2


async def test_auto_assign_floating_ip_gives_one_and_takes_it_back(lab: Lab, tmp_path: Path) -> None:
    net = {**ranges(), "auto_assign_floating_ip": "true"}
    async with networked_cloud(tmp_path, net) as cloud:
        code, body = await boot(cloud, cloud.admin_token, "floated")
        assert code == 202, body
        server = body["server"]["id"]
        for _ in range(50):
            listed = (await addresses(cloud, cloud.admin_token, server))["private"]
            if len(listed) == 2:
                break
            await asyncio.sleep(0.2)
        kinds = {a["OS-EXT-IPS:type"]: a["addr"] for a in listed}
        assert set(kinds) == {"fixed", "floating"}, listed
        assert kinds["floating"].startswith(net["floating_range"].rsplit(".", 1)[0] + ".")
        code, _, _ = await cloud.call("DELETE", f"/compute/v2.1/servers/{server}")
        assert code == 204
        for _ in range(100):
            row = await cloud.db.fetchrow("SELECT project_id, fixed_ip_id, auto_assigned"
                                          " FROM floating_ips WHERE address = $1", kinds["floating"])
            assert row is not None  # the pool's address: released, never deleted
            if row["project_id"] is None:
                break
            await asyncio.sleep(0.2)
        assert row is not None
        assert dict(row) == {"project_id": None, "fixed_ip_id": None, "auto_assigned": 0}
