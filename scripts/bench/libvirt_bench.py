"""create->ACTIVE through cloudd's REST API against libvirt's own domain create, same guest.

A controller (`cloudd serve`) and an agent with the libvirt driver (`cloudd agent`, QEMU software
emulation) run as real processes on SQLite; the tiny guest of scripts/build-guest-image.sh is
registered as `make run` does (scripts/register-guest.py). Then, interleaved, N times each:

- cloudd: POST /servers (m1.nano, no network), GET every `POLL` s until ACTIVE, then DELETE;
- libvirt: ``defineXML`` + ``create()`` (libvirt-python, in a thread) of the domain XML cloudd's
  driver builds for that guest (``libvirt_xml.domain_xml``, same layout), until it is running.
  Its disk overlay and kernel/initrd copies are made before the clock starts: libvirt's own
  create time is measured, and preparing the files counts as cloudd's overhead.

A first server, booted before the measurement and kept until the end, fetches the base images
into the agent's cache (its cold time is reported apart): the measured boots find them cached,
as on a host that already runs that image.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from cloud import BenchCloud, describe

from cloudd import db as dbmod
from cloudd.agent.compute.drivers.libvirt_images import create_overlay
from cloudd.agent.compute.drivers.libvirt_xml import DiskSpec, DomainLayout, domain_xml

REPO = Path(__file__).resolve().parents[2]
GUEST_DIR = Path(os.environ.get("CLOUDD_GUEST_DIR", "/var/cache/cloudd/guest"))
# Not under /tmp (0700 directories there): QEMU runs as libvirt-qemu and must reach the disks.
BENCH_ROOT = Path("/var/lib/cloudd-bench")
POLL = 0.05  # seconds between GETs: fine enough not to hide cloudd's time behind the poll
FLAVOR_ID, VCPUS, MEMORY_MB, ROOT_GB = "0", 1, 128, 1  # m1.nano
GiB = 1 << 30


def unusable_reason() -> str | None:
    """Why the libvirt figures cannot be measured here, or None; starts libvirt and builds the
    guest (cached) as `make run` does."""
    if os.geteuid() != 0:
        return "needs root (libvirt's qemu:///system)"
    if shutil.which("qemu-system-x86_64") is None or shutil.which("virsh") is None:
        return "QEMU/libvirt not installed (scripts/install-libvirt.sh)"
    try:
        import libvirt  # noqa: F401
    except ImportError:
        return "libvirt-python is not installed in the virtualenv"
    for command in (["bash", "scripts/start-libvirt.sh"],
                    ["bash", "scripts/build-guest-image.sh", str(GUEST_DIR)]):
        done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=900)
        if done.returncode != 0:
            return f"{' '.join(command[1:])} failed: {done.stderr.strip()[-300:]}"
    return None


@dataclass
class LibvirtBenchCloud(BenchCloud):
    """BenchCloud with one agent host on the libvirt driver."""

    def write_config(self) -> Path:
        path = self.workdir / "cloudd.conf"
        path.write_text(
            f"[DEFAULT]\nstate_dir = {self.workdir / 'state'}\nhost = bench-libvirt\n"
            f"log_level = WARNING\n[database]\nconnection = {self.db_url}\n"
            f"[api]\nlisten = 127.0.0.1\nport = {self.api_port}\n"
            f"[rpc]\nlisten = 127.0.0.1\nport = {self.rpc_port}\nenroll_port = {self.enroll_port}\n"
            f"[agent]\ncontroller_url = wss://127.0.0.1:{self.rpc_port}/agent\n"
            "[compute]\ncompute_driver = libvirt\n[libvirt]\nvirt_type = qemu\n"
            "[vnc]\nnovncproxy_host = 127.0.0.1\nnovncproxy_port = 0\n"
        )
        return path


async def avoid_name_clashes(db_url: str) -> None:
    """Domains are named instance-%08x of the instance id, and libvirtd is shared with other
    clouds on this machine (tests): start this cloud's ids at a random high number."""
    database = await dbmod.connect(db_url)
    try:
        first = 0x40000000 + uuid.uuid4().int % 0x3FFF0000
        await database.execute(
            "INSERT INTO instances (id, uuid, name, project_id, user_id, flavor, vcpus, memory_mb,"
            " vm_state, created_at, deleted) VALUES ($1, $2, 'id-offset', 'none', 'none', '{}', 1,"
            " 1, 'deleted', $3, 1)", first, str(uuid.uuid4()), time.time())
    finally:
        await database.close()


async def image_id(session: aiohttp.ClientSession, cloud: BenchCloud) -> str:
    async with session.get(cloud.base + "/image/v2/images?name=cloudd-guest") as resp:
        images = (await resp.json())["images"]
    if not images:
        raise RuntimeError("scripts/register-guest.py registered no cloudd-guest image")
    return str(images[0]["id"])


async def boot_through_api(session: aiohttp.ClientSession, cloud: BenchCloud,
                           image: str) -> tuple[str, float]:
    """(server id, seconds from POST to the first GET that says ACTIVE)."""
    servers = cloud.base + "/compute/v2.1/servers"
    body = {"server": {"name": f"bench-{uuid.uuid4().hex[:6]}", "imageRef": image,
                       "flavorRef": FLAVOR_ID, "networks": "none"}}
    started = time.monotonic()
    async with session.post(servers, json=body) as resp:
        if resp.status != 202:
            raise RuntimeError(f"create failed: {resp.status} {await resp.text()}")
        server_id = str((await resp.json())["server"]["id"])
    deadline = started + 120
    while time.monotonic() < deadline:
        async with session.get(f"{servers}/{server_id}") as resp:
            server = (await resp.json())["server"]
        if server["status"] == "ACTIVE":
            return server_id, time.monotonic() - started
        if server["status"] == "ERROR":
            raise RuntimeError(f"server {server_id} went to ERROR: {server.get('fault')}")
        await asyncio.sleep(POLL)
    raise RuntimeError(f"server {server_id} not ACTIVE after 120 s")


async def delete_through_api(session: aiohttp.ClientSession, cloud: BenchCloud,
                             server_id: str) -> None:
    url = f"{cloud.base}/compute/v2.1/servers/{server_id}"
    async with session.delete(url):
        pass
    for _ in range(600):
        async with session.get(url) as resp:
            if resp.status == 404:
                return
        await asyncio.sleep(0.1)
    raise RuntimeError(f"server {server_id} still there 60 s after DELETE")


async def prepare_direct_guest(root: Path) -> str:
    """Files for one guest as cloudd's driver lays them out, and its domain XML."""
    guest_uuid = str(uuid.uuid4())
    directory = root / guest_uuid
    await asyncio.to_thread(directory.mkdir, mode=0o755, parents=True)
    await asyncio.to_thread(os.chmod, directory, 0o755)
    await create_overlay(GUEST_DIR / "disk.qcow2", "qcow2", directory / "disk", ROOT_GB * GiB)
    # A copy each, as the driver makes: libvirt relabels the files a running guest uses.
    await asyncio.to_thread(shutil.copyfile, GUEST_DIR / "vmlinuz", directory / "kernel")
    await asyncio.to_thread(shutil.copyfile, GUEST_DIR / "initrd.img", directory / "ramdisk")
    return domain_xml(DomainLayout(
        uuid=guest_uuid, name=f"cloudd-bench-{guest_uuid[:8]}", virt_type="qemu",
        vcpus=VCPUS, memory_mb=MEMORY_MB,
        console_log=str(directory / "console.log"), instances_path=str(root),
        disks=[DiskSpec(str(directory / "disk"), "vda")], kernel=str(directory / "kernel"),
        ramdisk=str(directory / "ramdisk"), vnc_listen="127.0.0.1"))


def define_and_create(xml: str) -> float:
    """Blocking (run in a thread): seconds from defineXML to a running domain; then removes it."""
    import libvirt

    conn = libvirt.open("qemu:///system")
    try:
        started = time.monotonic()
        domain = conn.defineXML(xml)
        domain.create()
        while domain.state()[0] != libvirt.VIR_DOMAIN_RUNNING:
            time.sleep(0.001)
        elapsed = time.monotonic() - started
        domain.destroy()
        domain.undefine()
        return elapsed
    finally:
        conn.close()


def remove_leftovers(marker: str) -> None:
    """After a failure: every domain whose XML names this benchmark's directory."""
    import libvirt

    conn = libvirt.open("qemu:///system")
    try:
        for domain in conn.listAllDomains(0):
            try:
                if marker not in domain.XMLDesc(0):
                    continue
                if domain.isActive():
                    domain.destroy()
                domain.undefineFlags(libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE)
            except libvirt.libvirtError:
                pass  # gone meanwhile
    finally:
        conn.close()


async def measure(cloud: BenchCloud, direct_root: Path, runs: int) -> dict[str, Any]:
    cloudd_times: list[float] = []
    libvirt_times: list[float] = []
    async with aiohttp.ClientSession(headers=cloud.headers) as session:
        image = await image_id(session, cloud)
        keeper, cold = await boot_through_api(session, cloud, image)
        for _ in range(runs):
            server_id, seconds = await boot_through_api(session, cloud, image)
            cloudd_times.append(seconds)
            await delete_through_api(session, cloud, server_id)
            xml = await prepare_direct_guest(direct_root)
            libvirt_times.append(await asyncio.to_thread(define_and_create, xml))
        await delete_through_api(session, cloud, keeper)
    cloudd_stats, libvirt_stats = describe(cloudd_times), describe(libvirt_times)
    return {"cloudd": cloudd_stats, "libvirt": libvirt_stats,
            "ratio_p50": cloudd_stats["p50"] / libvirt_stats["p50"],
            "cold_first_boot": cold, "poll_interval": POLL,
            "samples": {"cloudd": cloudd_times, "libvirt": libvirt_times}}


async def libvirt_bench(runs: int = 3) -> dict[str, Any]:
    """The figures, or {"skipped": reason} when libvirt/QEMU cannot be used here."""
    reason = await asyncio.to_thread(unusable_reason)
    if reason is not None:
        return {"skipped": reason}
    workdir = BENCH_ROOT / uuid.uuid4().hex[:10]
    await asyncio.to_thread(workdir.mkdir, parents=True)
    for directory in (BENCH_ROOT, workdir):
        await asyncio.to_thread(os.chmod, directory, 0o755)
    db_url = f"sqlite:///{workdir}/cloudd.db"
    cloud = LibvirtBenchCloud(workdir, db_url, hosts=1)
    try:
        await cloud.start()
        await avoid_name_clashes(db_url)
        subprocess.run([sys.executable, str(REPO / "scripts/register-guest.py"), "--config",
                        str(workdir / "cloudd.conf"), str(GUEST_DIR)],
                       check=True, capture_output=True)
        return await measure(cloud, workdir / "direct", runs)
    finally:
        cloud.stop()
        await asyncio.to_thread(remove_leftovers, str(workdir))
        await asyncio.to_thread(shutil.rmtree, workdir, ignore_errors=True)


def table_rows(result: dict[str, Any]) -> list[str]:
    """Lines for run.py's table: cloudd's create->ACTIVE beside libvirt's own create."""
    label = f"create->ACTIVE, libvirt driver (poll {POLL} s)"
    if "cloudd" not in result:
        why = result.get("skipped") or result.get("failed", "not measured")
        return [f"{label:<44} {'sqlite':<11} not measured: {why}"]
    ours, theirs = result["cloudd"], result["libvirt"]
    mine = f"p50 {ours['p50'] * 1000:.0f} ms, p95 {ours['p95'] * 1000:.0f} ms (n={ours['n']})"
    return [f"{label:<44} {'sqlite':<11} {mine:<34} libvirt define+create p50 "
            f"{theirs['p50'] * 1000:.0f} ms; ratio {result['ratio_p50']:.2f}"]


if __name__ == "__main__":
    print(asyncio.run(libvirt_bench()))
