"""Real processes to break: `cloudd serve` and `cloudd agent` subprocesses (fake driver) on a
prepared database, a REST client with an admin token, and the checks every fault test ends with."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from cloudd.cert.enroll import enroll_host
from cloudd.compute import flavors, quota
from cloudd.config import CloudConfig, load_config
from cloudd.db import Database, connect
from cloudd.identity.bootstrap import bootstrap
from cloudd.image.data import import_image
from cloudd.image.records import image_store

from .cloud import wait_for
from .config import free_port

BOOT_IMAGE = "8a3c1d2e-0000-4000-8000-0000000000fa"
AGENT_HOST = "agent1"
# Pings after 4 s of silence, pong within 2 s: a dead peer (test_partition) is let go within
# 6 s, while a controller busy for a moment (in this very process, under a full run) keeps it.
LINK_HEARTBEAT = 4


@dataclass
class Processes:
    """The controller's and agent's configs, their subprocesses, and a REST session."""

    tmp: Path
    db_url: str
    api_port: int
    rpc_port: int
    session: aiohttp.ClientSession
    enroll_port: int = field(default_factory=free_port)
    join_token: str = ""  # the agent's, from `cloudd manage host enroll` (prepare_database)
    controller_conf: Path = field(init=False)
    agent_conf: Path = field(init=False)
    token: str = ""
    project_id: str = ""
    controller: subprocess.Popen[bytes] | None = None
    agent: subprocess.Popen[bytes] | None = None
    # Where the controller's agent listener is (and its my_ip): another address than loopback
    # when the agent runs in its own network namespace (harness.partition).
    rpc_address: str = "127.0.0.1"
    agent_command_prefix: list[str] = field(default_factory=list)  # e.g. ip netns exec NS

    def __post_init__(self) -> None:
        self.controller_conf = self.tmp / "controller.conf"
        self.agent_conf = self.tmp / "agent.conf"
        # Its server certificate names my_ip: the address the agent dials must be among them;
        # the API stays on loopback, where `cloudd manage status` must look for it.
        apart = self.rpc_address != "127.0.0.1"
        my_ip = f"my_ip = {self.rpc_address}\n" if apart else ""
        public_url = f"public_url = http://127.0.0.1:{self.api_port}\n" if apart else ""
        self.controller_conf.write_text(
            f"[DEFAULT]\nstate_dir = {self.tmp / 'ctl-state'}\nhost = ctl\n{my_ip}"
            f"[database]\nconnection = {self.db_url}\n"
            f"[api]\nlisten = 127.0.0.1\nport = {self.api_port}\n{public_url}"
            f"[rpc]\nlisten = {self.rpc_address}\nport = {self.rpc_port}\n"
            f"enroll_port = {self.enroll_port}\nlink_heartbeat = {LINK_HEARTBEAT}\n"
            "[service]\nreport_interval = 0.5\nservice_down_time = 5\n"
            "[objectstore]\nlisten = 127.0.0.1\nport = 0\n"
            "[ec2]\nlisten = 127.0.0.1\nport = 0\n"
            f"[network]\nmetadata_port = {free_port()}\n"
            "[vnc]\nnovncproxy_host = 127.0.0.1\nnovncproxy_port = 0\n"
        )

    @property
    def config(self) -> CloudConfig:
        return load_config(self.controller_conf)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def _log(self, name: str) -> Any:
        return open(self.tmp / f"{name}.log", "ab")

    def start_controller(self) -> None:
        self.controller = subprocess.Popen(
            [sys.executable, "-m", "cloudd", "--config", str(self.controller_conf), "serve"],
            stdout=subprocess.DEVNULL, stderr=self._log("controller"))

    def start_agent(self, delays: str = "", controller_url: str | None = None) -> None:
        url = controller_url or f"wss://{self.rpc_address}:{self.rpc_port}/agent"
        self.agent_conf.write_text(
            f"[DEFAULT]\nhost = {AGENT_HOST}\nstate_dir = {self.tmp / 'agent-state'}\n"
            "[service]\nreport_interval = 0.5\n"
            # Used at its first start only; later starts have the certificate it gave.
            f"[rpc]\nenroll_port = {self.enroll_port}\nlink_heartbeat = {LINK_HEARTBEAT}\n"
            f"[cert]\njoin_token = {self.join_token}\n"
            f"[agent]\ncontroller_url = {url}\nreconnect_max_backoff = 1\n"
            "[compute]\ncompute_driver = fake\nfake_vcpus = 1000\nfake_memory_mb = 1000000\n"
            f"fake_local_gb = 100000\nfake_delays = {delays}\n"
        )
        self.agent = subprocess.Popen(
            [*self.agent_command_prefix, sys.executable, "-m", "cloudd", "--config",
             str(self.agent_conf), "agent"],
            stdout=subprocess.DEVNULL, stderr=self._log("agent"))

    @staticmethod
    def kill(proc: subprocess.Popen[bytes] | None) -> None:
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)

    def stop_all(self) -> None:
        for proc in (self.agent, self.controller):
            if proc is not None and proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(20)
                except subprocess.TimeoutExpired:
                    self.kill(proc)

    async def wait_api(self, limit: float = 30.0) -> None:
        async def answers() -> bool:
            if self.controller is not None:
                assert self.controller.poll() is None, self.log_tail("controller")
            try:
                async with self.session.get(self.base + "/healthz") as resp:
                    return resp.status == 200
            except aiohttp.ClientError:
                return False

        await wait_for(answers, limit, "the controller's API")

    async def agent_connected(self) -> bool:
        """Whether the controller's /healthz lists the agent among the connected ones."""
        try:
            async with self.session.get(self.base + "/healthz") as resp:
                report = await resp.json()
        except aiohttp.ClientError:
            return False
        return AGENT_HOST in report["services"]["conductor"].get("agents", [])

    async def start_cloud(self, delays: str = "", controller_url: str | None = None) -> None:
        """Controller up, admin logged in, the agent (with ``delays``) started and connected."""
        self.start_controller()
        await self.wait_api()
        await self.login()
        self.start_agent(delays, controller_url=controller_url)
        await wait_for(self.agent_connected, 30, "the agent to connect")

    async def login(self) -> None:
        db = await connect(self.db_url)
        try:
            password_file = self.tmp / "ctl-state" / "admin-password"
            password = (await asyncio.to_thread(password_file.read_text)).strip()
            self.project_id = str(await db.fetchval("SELECT id FROM projects WHERE name = 'admin'"))
        finally:
            await db.close()
        body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
            "name": "admin", "domain": {"id": "default"}, "password": password}}},
            "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}}}
        async with self.session.post(f"{self.base}/identity/v3/auth/tokens", json=body) as resp:
            assert resp.status == 201, await resp.text()
            self.token = resp.headers["X-Subject-Token"]

    async def call(self, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
        headers = {"X-Auth-Token": self.token, **kwargs.pop("headers", {})}
        async with self.session.request(method, self.base + path, headers=headers,
                                        **kwargs) as resp:
            body = await resp.json() if resp.content_type == "application/json" else await resp.text()
            return resp.status, body

    async def boot(self, name: str) -> tuple[int, Any]:
        return await self.call("POST", "/compute/v2.1/servers", json={"server": {
            "name": name, "imageRef": BOOT_IMAGE, "flavorRef": "1"}})

    def log_tail(self, name: str, lines: int = 40) -> str:
        path = self.tmp / f"{name}.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


async def prepare_database(db_url: str, cfg: CloudConfig, tmp: Path) -> str:
    """Schema, admin credentials, unlimited quota and a public boot image: what `make run`
    would have done before the controller starts; returns the agent's join token."""
    state_dir = Path(cfg.default.state_dir)
    await asyncio.to_thread(state_dir.mkdir, parents=True, exist_ok=True)
    db: Database = await connect(db_url)
    try:
        await db.migrate()
        creds = await bootstrap(db, state_dir)
        await flavors.ensure_defaults(db)
        await quota.set_limits(db, creds["project_id"], {"instances": -1, "cores": -1, "ram": -1},
                               time.time())
        image = tmp / "boot.img"
        await asyncio.to_thread(image.write_bytes, b"\0" * 1024)
        await import_image(db, image_store(cfg), image, "boot", disk_format="raw", public=True,
                           image_id=BOOT_IMAGE)
        return await enroll_host(db, AGENT_HOST, cfg.cert.ca_path)
    finally:
        await db.close()


async def assert_consistent(db: Database, total: int | None = None) -> list[dict[str, Any]]:
    """Every server ACTIVE or ERROR-with-a-fault, none duplicated, and every node's usage the
    sum of the instances placed on it. Returns the live instances."""
    rows = await db.fetch("SELECT uuid, name, vm_state, task_state, host, node, vcpus,"
                          " memory_mb FROM instances WHERE deleted = 0")
    if total is not None:
        assert len(rows) == total
    names = [row["name"] for row in rows]
    assert len(set(names)) == len(names), "a server was created twice"
    for row in rows:
        assert (row["vm_state"], row["task_state"]) in (("active", None), ("error", None)), row
        if row["vm_state"] == "error":
            fault = await db.fetchval(
                "SELECT message FROM instance_faults WHERE instance_uuid = $1", row["uuid"])
            assert fault, f"{row['uuid']} is ERROR without a fault"
    for node in await db.fetch("SELECT hypervisor_hostname, vcpus_used, memory_mb_used,"
                               " reserved_host_memory_mb FROM compute_nodes"):
        placed = [r for r in rows if r["node"] == node["hypervisor_hostname"]]
        assert node["vcpus_used"] == sum(r["vcpus"] for r in placed), node
        assert node["memory_mb_used"] == (node["reserved_host_memory_mb"] or 0) + sum(
            r["memory_mb"] for r in placed), node
    return rows


async def assert_endings(db: Database, accepted: set[str], *, active: int,
                         error: int = 0) -> None:
    """Stricter than ``assert_consistent``, which takes ERROR (with any fault) for "not lost":
    of the servers ``accepted`` before a fault, exactly ``active`` ended ACTIVE and ``error``
    ERROR, each ERROR with a fault; a mismatch shows the faults, which name their causes."""
    rows = await db.fetch("SELECT uuid, vm_state, task_state FROM instances WHERE deleted = 0")
    endings = {row["uuid"]: (row["vm_state"], row["task_state"]) for row in rows
               if row["uuid"] in accepted}
    assert endings.keys() == accepted, f"lost: {sorted(accepted - endings.keys())}"
    counts = Counter(vm_state for vm_state, _ in endings.values())
    faults = {row["instance_uuid"]: row["message"] for row in await db.fetch(
        "SELECT instance_uuid, message FROM instance_faults")}
    failed = {uuid: faults.get(uuid) for uuid, (vm_state, _) in endings.items()
              if vm_state == "error"}
    assert dict(counts) == {state: n for state, n in (("active", active), ("error", error)) if n}, (
        f"endings {dict(counts)}, expected {active} active and {error} error; the errors' faults:"
        f" {failed}")
    assert all(failed.values()), f"ERROR without a fault: {failed}"
