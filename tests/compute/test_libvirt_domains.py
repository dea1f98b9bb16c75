"""Domains that belong to one cloud, on a libvirtd shared with others (real libvirt and QEMU).

Two clouds on one libvirtd both boot their first server and leave each other's domains alone;
a cloud started again on a fresh state directory boots while the old cloud's guests still run;
this cloud's orphaned domains are reaped (at agent start and by the periodic check) while
another cloud's domains and domains without cloudd metadata are only reported.
"""
# ruff: noqa: F811 - the fixtures imported from harness.libvirt_host are test parameters here

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
import uuid as uuid_module
from pathlib import Path

import pytest
from harness.libvirt import LibvirtCloud, domstate, libvirt_cloud
from harness.libvirt_host import TEST_ROOT, libvirt_host, virsh, wait_for  # noqa: F401 - fixtures

from cloudd.agent.compute.drivers.libvirt_xml import METADATA_NS

pytestmark = pytest.mark.slow


def cloud_id_of(cloud: LibvirtCloud) -> str:
    with sqlite3.connect(cloud.state / "cloudd.db") as db:
        return str(db.execute("SELECT cloud_id FROM cloud").fetchone()[0])


def define_domain(name: str, cloud_id: str | None = None, instances_path: Path | None = None,
                  start: bool = True) -> str:
    """A diskless domain (its BIOS finds nothing to boot and waits), with cloudd metadata when
    ``instances_path`` is given; its uuid."""
    uuid = str(uuid_module.uuid4())
    owner = ""
    if instances_path is not None:
        cloud = f"<cloudd:cloud_id>{cloud_id}</cloudd:cloud_id>" if cloud_id else ""
        owner = (f'<metadata><cloudd:instance xmlns:cloudd="{METADATA_NS}"><cloudd:instances_path>'
                 f"{instances_path}</cloudd:instances_path>{cloud}</cloudd:instance></metadata>")
    xml = (f"<domain type='qemu'><name>{name}</name><uuid>{uuid}</uuid>{owner}"
           "<memory unit='MiB'>32</memory><vcpu>1</vcpu>"
           "<os><type arch='x86_64' machine='pc'>hvm</type></os>"
           "<devices><memballoon model='none'/></devices></domain>")
    path = TEST_ROOT / f"{name}.xml"
    path.write_text(xml)
    try:
        virsh("define", str(path))
    finally:
        path.unlink()
    if start:
        virsh("start", name)
    return uuid


def remove_domain(name: str) -> None:
    try:
        if domstate(name) != "shut off":
            virsh("destroy", name)
        virsh("undefine", name)
    except subprocess.CalledProcessError:
        pass  # already gone


def full_log(cloud: LibvirtCloud) -> str:
    return (cloud.agent_state / "agent.log").read_text()


def domain_names() -> set[str]:
    return set(virsh("list", "--all", "--name").split())


async def test_two_clouds_on_one_libvirtd_boot_and_leave_each_other_alone(
    libvirt_host: Path,
) -> None:
    async with libvirt_cloud(libvirt_host) as first, libvirt_cloud(libvirt_host) as second:
        servers = await asyncio.gather(first.create("one", first.images["cloudd-guest"]),
                                       second.create("one", second.images["cloudd-guest"]))
        rows = [await cloud.wait_status(server, "ACTIVE")
                for cloud, server in zip((first, second), servers, strict=True)]
        names = [row["OS-EXT-SRV-ATTR:instance_name"] for row in rows]
        # Each cloud's first instance: with per-database numbers both were instance-00000001.
        assert names[0] != names[1]
        assert all(domstate(name) == "running" for name in names)  # the API shows libvirt's name
        assert cloud_id_of(first) != cloud_id_of(second)

        await first.delete(servers[0])
        assert names[0] not in domain_names()
        assert domstate(names[1]) == "running"
        assert (await second.server(servers[1]))["status"] == "ACTIVE"


async def test_orphans_of_this_cloud_are_reaped_others_only_reported(libvirt_host: Path) -> None:
    suffix = uuid_module.uuid4().hex[:8]
    other_cloud, foreign = f"other-cloud-{suffix}", f"foreign-{suffix}"
    async with libvirt_cloud(libvirt_host) as cloud:
        try:
            ours = cloud_id_of(cloud)
            await cloud.kill_agent()
            # While the agent is away: a guest of this cloud whose instance is gone (its files
            # too), another cloud's domain on the same instances_path, and someone else's.
            orphan = define_domain(f"orphan-{suffix}", ours, cloud.instances)
            (cloud.instances / orphan).mkdir(parents=True)
            (cloud.instances / orphan / "console.log").write_text("left over\n")
            define_domain(other_cloud, str(uuid_module.uuid4()), cloud.instances, start=False)
            define_domain(foreign)

            await cloud.start_agent()

            async def orphan_reaped() -> bool:
                return f"orphan-{suffix}" not in domain_names()

            async def others_reported() -> bool:
                return f"domain {foreign} " in full_log(cloud)

            await wait_for(orphan_reaped, 30, "the agent's start-up check to reap the orphan")
            await wait_for(others_reported, 30, "the agent's report of the other domains")
            assert not (cloud.instances / orphan).exists()
            assert domstate(foreign) == "running"
            assert domstate(other_cloud) == "shut off"
            lines = full_log(cloud).splitlines()
            assert any(f"domain {other_cloud} " in line and "belongs to cloud " in line
                       for line in lines)
            assert any(f"domain {foreign} " in line and "no cloudd metadata" in line
                       for line in lines)
            status = await manage_status(cloud)
            assert f"domain {foreign} " in status and f"domain {other_cloud} " in status

            # The periodic check finds an orphan that appears while the agent runs.
            await cloud.kill_agent()
            reports = full_log(cloud).count(f"domain {foreign} ")
            cloud.agent_default_options = "running_deleted_instance_poll_interval = 1\n"
            await cloud.start_agent()

            async def started() -> bool:  # its start-up check has run (and reported again)
                return full_log(cloud).count(f"domain {foreign} ") > reports

            await wait_for(started, 30, "the agent's start-up check")
            late = f"late-orphan-{suffix}"
            define_domain(late, ours, cloud.instances)

            async def reaped() -> bool:
                return late not in domain_names()

            await wait_for(reaped, 30, f"the periodic check to reap {late}")
            assert domstate(foreign) == "running"
            assert domstate(other_cloud) == "shut off"
        finally:
            for name in (other_cloud, foreign, f"late-orphan-{suffix}", f"orphan-{suffix}"):
                remove_domain(name)


async def manage_status(cloud: LibvirtCloud) -> str:
    """`cloudd manage status` as an operator on the controller runs it."""
    conf = cloud.state / "status.conf"
    conf.write_text(f"[DEFAULT]\nstate_dir = {cloud.state}\n[database]\n"
                    f"connection = sqlite://{cloud.state}/cloudd.db\n[api]\npublic_url = {cloud.base}\n")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "cloudd", "--config", str(conf),
        "manage", "status", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await proc.communicate()
    return out.decode()


async def test_fresh_state_dir_boots_while_the_old_clouds_guests_run(libvirt_host: Path) -> None:
    state = TEST_ROOT / f"e2e-{uuid_module.uuid4().hex[:10]}"
    # The leftover too: a domain called as a per-database first instance used to be.
    legacy = f"instance-00000001-{uuid_module.uuid4().hex[:4]}"
    try:
        async with libvirt_cloud(libvirt_host, state=state, keep_domains=True) as old:
            old_server = await old.create("first", old.images["cloudd-guest"])
            old_name = (await old.wait_status(old_server, "ACTIVE"))["OS-EXT-SRV-ATTR:instance_name"]
        assert not state.exists() and domstate(old_name) == "running"  # state dir deleted
        define_domain(legacy, start=False)

        async with libvirt_cloud(libvirt_host, state=state) as new:
            server = await new.create("first", new.images["cloudd-guest"])
            row = await new.wait_status(server, "ACTIVE")
            assert domstate(row["OS-EXT-SRV-ATTR:instance_name"]) == "running"
            assert domstate(old_name) == "running"  # another cloud's now: never touched
            assert f"domain {old_name}" in full_log(new)
    finally:
        remove_domain(legacy)
        if "old_name" in locals():
            remove_domain(old_name)
