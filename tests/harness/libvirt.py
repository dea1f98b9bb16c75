"""A real cloud on QEMU guests: the controller in-process, a `cloudd agent` subprocess with the
libvirt driver (QEMU software emulation), guests booted through the Compute REST API from the test
guest registered the way `make run` registers it (an AKI, an ARI and a disk image whose
kernel_id/ramdisk_id properties make it boot directly, the EC2 model)."""

from __future__ import annotations

import asyncio
import shutil
import signal
import subprocess
import sys
import time
import uuid as uuid_module
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cloudd.cert.enroll import enroll_host
from cloudd.conductor.service import ConductorService
from cloudd.config import CloudConfig, resolve_paths, validate
from cloudd.db import Database
from cloudd.image.data import import_image
from cloudd.image.records import image_store

from .api import ApiCloud, fields_of, running_cloud
from .config import free_port
from .libvirt_host import READY_LINE, TEST_ROOT, virsh

AGENT_HOST = "libvirt-e2e"
# What an agent on another machine would have: its own state directory and config file.
AGENT_CONF = """[DEFAULT]
host = {host}
state_dir = {state}
log_level = INFO

[rpc]
enroll_port = {enroll_port}

[cert]
# Redeemed at the first start (`cloudd manage host enroll`); later starts use the certificate.
join_token = {join_token}

[agent]
controller_url = {url}
# Long enough that only start-up reconciliation and libvirt events can change power states.
sync_power_state_interval = 3600

[compute]
compute_driver = libvirt

[libvirt]
virt_type = qemu
"""


@dataclass(kw_only=True)
class LibvirtCloud(ApiCloud):
    """The cloud on a libvirt host: its console proxy, state directories, and the agent."""

    proxy: str  # the console proxy: http://127.0.0.1:<port>
    state: Path  # the controller's state directory
    agent_state: Path
    agent_url: str  # wss://127.0.0.1:<rpc port>/agent
    enroll_port: int
    join_token: str
    images: dict[str, str] = field(default_factory=dict)  # name -> id
    agent: asyncio.subprocess.Process | None = None
    agent_default_options: str = ""  # lines added to the agent's [DEFAULT] at each start

    @property
    def instances(self) -> Path:
        return self.agent_state / "instances"

    async def action(self, server: str, body: dict[str, Any], expect: int = 202) -> Any:
        code, reply, _ = await self.call("POST", f"/compute/v2.1/servers/{server}/action", json=body)
        assert code == expect, (body, code, reply)
        return reply

    async def server(self, server: str) -> dict[str, Any]:
        code, body, _ = await self.call("GET", f"/compute/v2.1/servers/{server}")
        assert code == 200, body
        return dict(body["server"])

    async def create(self, name: str, image: str, flavor: str = "0", networks: str = "none") -> str:
        code, body, _ = await self.call("POST", "/compute/v2.1/servers", json={"server": {
            "name": name, "imageRef": image, "flavorRef": flavor, "networks": networks}})
        assert code == 202, body
        return str(body["server"]["id"])

    async def wait_status(self, server: str, status: str, seconds: float = 120,
                          interval: float = 0.3) -> dict[str, Any]:
        deadline = time.monotonic() + seconds
        row: dict[str, Any] = {}
        while time.monotonic() < deadline:
            row = await self.server(server)
            if row["status"] == status and row.get("OS-EXT-STS:task_state") is None:
                return row
            assert row["status"] != "ERROR", row.get("fault")
            await asyncio.sleep(interval)
        raise AssertionError(f"{server} not {status} after {seconds}s: {row.get('status')}"
                             f" task={row.get('OS-EXT-STS:task_state')}")

    async def console(self, server: str) -> str:
        reply = await self.action(server, {"os-getConsoleOutput": {}}, expect=200)
        return str(reply["output"])

    async def wait_ready(self, server: str, count: int, seconds: float = 90) -> str:
        """The console output once it holds the guest's ready line ``count`` times."""
        deadline = time.monotonic() + seconds
        output = ""
        while time.monotonic() < deadline:
            output = await self.console(server)
            if output.count(READY_LINE) >= count:
                return output
            await asyncio.sleep(0.5)
        raise AssertionError(f"ready line #{count} not on the console of {server}:\n{output[-2000:]}")

    async def delete(self, server: str) -> None:
        code, _, _ = await self.call("DELETE", f"/compute/v2.1/servers/{server}")
        assert code == 204
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            code, _, _ = await self.call("GET", f"/compute/v2.1/servers/{server}")
            if code == 404:
                return
            await asyncio.sleep(0.3)
        raise AssertionError(f"{server} still there 60 s after delete")

    # ----- the agent process --------------------------------------------------------------

    async def start_agent(self) -> None:
        conf = self.agent_state / "agent.conf"
        await asyncio.to_thread(conf.write_text, AGENT_CONF.format(
            host=AGENT_HOST, state=self.agent_state, url=self.agent_url,
            enroll_port=self.enroll_port, join_token=self.join_token,
        ).replace("[DEFAULT]\n", "[DEFAULT]\n" + self.agent_default_options, 1))
        log = await asyncio.to_thread(open, self.agent_state / "agent.log", "ab")
        try:
            self.agent = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "cloudd", "--config", str(conf), "agent",
                stdout=log, stderr=log)
        finally:
            log.close()
        await self.wait_agent_up()

    async def wait_agent_up(self, seconds: float = 60) -> None:
        """Until the agent's compute service heartbeats (it registers after reconciling)."""
        deadline = time.monotonic() + seconds
        since = time.time()
        while time.monotonic() < deadline:
            assert self.agent is not None and self.agent.returncode is None, self.agent_log()
            _, body, _ = await self.call("GET", "/compute/v2.1/os-services", version="2.1")
            for service in body["services"]:
                if service["host"] == AGENT_HOST and service["state"] == "up" and \
                        _epoch(service.get("updated_at")) >= since:
                    return
            await asyncio.sleep(0.3)
        raise AssertionError(f"agent did not come up:\n{self.agent_log()}")

    async def kill_agent(self) -> None:
        """SIGKILL: no clean stop, the guests keep running (as when a host's agent crashes)."""
        assert self.agent is not None
        self.agent.send_signal(signal.SIGKILL)
        await self.agent.wait()
        self.agent = None

    def agent_log(self) -> str:
        try:
            return (self.agent_state / "agent.log").read_text()[-4000:]
        except OSError:
            return ""


def _epoch(stamp: str | None) -> float:
    """An API timestamp (ISO 8601, UTC) as seconds since the epoch; 0 when absent."""
    if not stamp:
        return 0.0
    parsed = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


async def register_guest(db: Database, cfg: CloudConfig, guest_dir: Path, kernel_file: str) -> dict[str, str]:
    """The guest as `make run` registers it: AKI + ARI, and the disk with their ids."""
    store = image_store(cfg)
    kernel = await import_image(db, store, guest_dir / kernel_file, "cloudd-guest-kernel",
                                disk_format="aki", container_format="aki", public=True)
    ramdisk = await import_image(db, store, guest_dir / "initrd.img", "cloudd-guest-ramdisk",
                                 disk_format="ari", container_format="ari", public=True)
    disk = await import_image(db, store, guest_dir / "disk.qcow2", "cloudd-guest",
                              disk_format="qcow2", public=True,
                              properties={"kernel_id": kernel.id, "ramdisk_id": ramdisk.id})
    return {"kernel": kernel.id, "ramdisk": ramdisk.id, "cloudd-guest": disk.id}


@asynccontextmanager
async def libvirt_cloud(guest_dir: Path, kernel_file: str = "vmlinux", register: bool = True,
                        network: dict[str, str] | None = None, state: Path | None = None,
                        keep_domains: bool = False) -> AsyncIterator[LibvirtCloud]:
    """A controller (in-process) and a libvirt agent (subprocess), the guest registered
    (unless ``register`` is false: a test registers it another way); ``network``: the
    controller's [network] options; ``state``: its state directory (default: a new one);
    ``keep_domains``: its domains are left running at the end (its files are removed).
    Under TEST_ROOT: QEMU (libvirt-qemu) must traverse the directories to the disks."""
    state = state or TEST_ROOT / f"e2e-{uuid_module.uuid4().hex[:10]}"
    agent_state = state / "agent"
    await asyncio.to_thread(agent_state.mkdir, parents=True)
    for directory in (TEST_ROOT, state, agent_state):
        await asyncio.to_thread(directory.chmod, 0o755)
    cfg = resolve_paths(validate({
        "default": {"state_dir": str(state), "host": "ctl"},
        "database": {"connection": f"sqlite://{state}/cloudd.db"},
        "api": {"listen": "127.0.0.1", "port": "0"},
        "rpc": {"listen": "127.0.0.1", "port": "0", "enroll_port": "0"},
        "service": {"report_interval": "0.5"},
        "vnc": {"novncproxy_host": "127.0.0.1", "novncproxy_port": "0",
                "novncproxy_base_url": "http://127.0.0.1:0/vnc_lite.html"},
        "network": network or {},
    }))
    images: dict[str, str] = {}  # name -> id

    async def register_images(db: Database, cfg: CloudConfig, creds: dict[str, Any]) -> None:
        if register:
            images.update(await register_guest(db, cfg, guest_dir, kernel_file))

    try:
        async with running_cloud(state, agent=False, boot_image=False, prepare=register_images,
                                 cfg=cfg) as up:
            conductor = up.host.get(ConductorService)
            proxy_port = getattr(up.host.services.get("vncproxy"), "port", 0)
            cloud = LibvirtCloud(
                **{**fields_of(up), "microversion": "2.47"},
                proxy=f"http://127.0.0.1:{proxy_port}", state=state, agent_state=agent_state,
                agent_url=f"wss://127.0.0.1:{conductor.port}/agent",
                enroll_port=conductor.enroll_port or 0,
                join_token=await enroll_host(up.db, AGENT_HOST, cfg.cert.ca_path), images=images)
            try:
                await cloud.start_agent()
                yield cloud
            finally:
                if cloud.agent is not None and cloud.agent.returncode is None:
                    cloud.agent.terminate()
                    await cloud.agent.wait()
    finally:
        if keep_domains:
            await asyncio.to_thread(shutil.rmtree, state, True)
        else:
            await asyncio.to_thread(_destroy_leftovers, state)


def _destroy_leftovers(state: Path) -> None:
    """After a failed test: the domains this cloud defined, then its files."""
    marker = str(state)
    for name in virsh("list", "--all", "--name").split():
        try:
            if marker not in virsh("dumpxml", name):
                continue
            if domstate(name) != "shut off":
                virsh("destroy", name)
            virsh("undefine", "--managed-save", name)
        except subprocess.CalledProcessError:
            pass  # best effort after a failed test, which has already reported
    shutil.rmtree(state, ignore_errors=True)


def domstate(server: str) -> str:
    return virsh("domstate", server).strip()


def flat_dhcp_network(bridge: str) -> dict[str, str]:
    """The controller's [network] options for a FlatDHCP network on `bridge`, with the metadata
    service on a free port of 127.0.0.1."""
    return {"network_manager": "FlatDHCPManager", "flat_network_bridge": bridge,
            "metadata_host": "127.0.0.1", "metadata_port": str(free_port())}
