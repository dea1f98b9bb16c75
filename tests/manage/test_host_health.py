"""`cloudd manage status` asks each compute host's agent about itself (GET /healthz/hosts ->
compute.host_health): a healthy fake-driver host, a stopped agent, a dead dnsmasq."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import aiohttp
import pytest
from harness.cloud import Cloud, start_cloud, wait_for
from harness.config import make_config
from harness.netlab import Lab, lab, network_cloud, teardown_host  # noqa: F401  # lab: fixture
from harness.users import add_user, issue_token

from cloudd.cli import main
from cloudd.identity.bootstrap import bootstrap
from cloudd.network import ipam


async def manage_status(cloud: Cloud, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """`cloudd manage status` as an operator on the controller runs it (its config, its files)."""
    cfg = cloud.cfg
    conf = tmp_path / "status.conf"
    conf.write_text(f"[DEFAULT]\nstate_dir = {cfg.default.state_dir}\n"
                    f"[database]\nconnection = {cfg.database.connection}\n"
                    f"[api]\npublic_url = {cfg.api.public_url}\n"
                    f"[service]\nservice_down_time = {cfg.service.service_down_time}\n")
    capsys.readouterr()
    code = await asyncio.to_thread(main, ["--config", str(conf), "manage", "status"])
    return code, capsys.readouterr().out


async def test_a_healthy_host_then_its_agent_stopped(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    cloud = await start_cloud(make_config(f"sqlite:///{tmp_path / 'cloud.db'}", tmp_path))
    try:
        await bootstrap(cloud.db, Path(cloud.cfg.default.state_dir))
        await cloud.wait_state((await cloud.boot())[0][0]["uuid"], "active")
        code, out = await manage_status(cloud, tmp_path, capsys)
        assert code == 0, out
        assert "OK   host agent1: fake driver, 1 guest(s)" in out
        assert "libvirt" not in out.split("host agent1")[1].splitlines()[0]  # not a libvirt host

        await cloud.agent_host.stop()
        code, out = await manage_status(cloud, tmp_path, capsys)
        assert code == 1
        # Named at once, before its heartbeat is even late.
        assert "FAIL host agent1: agent not connected to the controller" in out
        assert "start the agent on agent1" in out
    finally:
        await cloud.stop()


async def test_hosts_health_is_for_admins_only(tmp_path: Path) -> None:
    cloud = await start_cloud(make_config(f"sqlite:///{tmp_path / 'cloud.db'}", tmp_path))
    try:
        url = cloud.cfg.api.public_url.rstrip("/") + "/healthz/hosts"
        async with aiohttp.ClientSession() as session:
            async with session.get(url) as resp:
                assert resp.status == 401
            async with session.get(url, headers={"X-Auth-Token": "not-a-token"}) as resp:
                assert resp.status == 401
            async with session.get(url, headers={"X-Auth-Token": await _member_token(
                    cloud, session)}) as resp:
                assert resp.status == 403
            # An admin gets each agent's report, with the agent process's own counts (the
            # soak run, `make soak`, watches them stay flat).
            name, _ = await add_user(cloud.db, "lab", ("admin",), password="pw-admin")
            admin = await issue_token(session, url.rsplit("/healthz", 1)[0], name, "pw-admin", "lab")
            async with session.get(url, headers={"X-Auth-Token": admin}) as resp:
                assert resp.status == 200
                (report,) = (await resp.json())["hosts"]
            assert report["asyncio_tasks"] > 0 and report["gc_objects"] > 0
            assert report["allocated_blocks"] > 0
    finally:
        await cloud.stop()


@pytest.mark.slow
async def test_status_names_a_dead_dnsmasq(lab: Lab, tmp_path: Path,  # noqa: F811
                                           capsys: pytest.CaptureFixture[str]) -> None:
    bridge = f"brh{lab.tag}"
    async with network_cloud(tmp_path, "FlatDHCPManager", flat_network_bridge=bridge) as cloud:
        state_dir = Path(cloud.cfg.default.state_dir)
        try:
            await bootstrap(cloud.db, state_dir)
            await ipam.create_networks(cloud.db, "FlatDHCPManager", "private", "10.231.77.0/24",
                                       bridge=bridge)
            await cloud.wait_state((await cloud.boot(name="web"))[0][0]["uuid"], "active")
            pid_file = state_dir / "networks" / f"nova-{bridge}.pid"
            await wait_for(lambda: asyncio.to_thread(pid_file.exists), 15, "dnsmasq to start")
            code, out = await manage_status(cloud, tmp_path, capsys)
            assert code == 0, out
            pid = int(pid_file.read_text().strip())
            assert f"dnsmasq running for private (pid {pid})" in out

            os.kill(pid, signal.SIGKILL)
            await wait_for(lambda: asyncio.to_thread(_gone, pid), 10, "dnsmasq to die")
            code, out = await manage_status(cloud, tmp_path, capsys)
            assert code == 1
            assert f"FAIL host agent1: dnsmasq for network private ({bridge}) is not running" in out
            assert f"nova-{bridge}.log" in out  # where to read why
        finally:
            teardown_host(state_dir, [bridge])


async def _member_token(cloud: Cloud, session: aiohttp.ClientSession) -> str:
    name, _ = await add_user(cloud.db, "lab", ("member",), password="pw-member")
    return await issue_token(session, cloud.cfg.api.public_url.rstrip("/"), name, "pw-member", "lab")


def _gone(pid: int) -> bool:
    """Dead, or a zombie nobody reaped (its command line is empty)."""
    try:
        return not Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return True


async def test_libvirt_check_on_a_real_connection(tmp_path: Path) -> None:
    from cloudd.agent.compute.drivers.libvirt import LibvirtDriver
    from cloudd.agent.health import check_libvirt

    # libvirt's built-in test hypervisor: a real connection, no daemon needed.
    driver = LibvirtDriver(instances_path=str(tmp_path / "instances"), connection_uri="test:///default")
    await driver.init_host("lv1")
    assert await check_libvirt(driver) == (True, "")
    await driver.cleanup_host()  # the connection is gone, as after libvirtd went away
    reachable, why = await check_libvirt(driver)
    assert reachable is False and "init_host" in why
