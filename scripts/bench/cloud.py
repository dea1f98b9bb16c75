"""A cloud for benchmarks: `cloudd serve` and `cloudd agent` as real processes (fake driver with
N simulated hosts), bootstrapped, with an admin token; plus helpers to measure them."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def memory_of(pid: int) -> dict[str, float]:
    """RSS, PSS and anonymous memory in MB from /proc (PSS shares libraries fairly between
    processes, so it moves a little as other processes map them; Anonymous is the heap alone)."""
    out: dict[str, float] = {}
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            key, _, rest = line.partition(":")
            if key in ("Rss", "Pss", "Anonymous"):
                out[key.lower()] = int(rest.split()[0]) / 1024
    except OSError:
        pass
    return out


@dataclass
class BenchCloud:
    workdir: Path
    db_url: str
    hosts: int
    api_port: int = field(default_factory=free_port)
    rpc_port: int = field(default_factory=free_port)
    enroll_port: int = field(default_factory=free_port)
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    token: str = ""
    start_seconds: float = 0.0

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def write_config(self) -> Path:
        path = self.workdir / "cloudd.conf"
        path.write_text(
            f"[DEFAULT]\nstate_dir = {self.workdir / 'state'}\nhost = bench\nlog_level = WARNING\n"
            f"[database]\nconnection = {self.db_url}\n"
            f"[api]\nlisten = 127.0.0.1\nport = {self.api_port}\n"
            f"[rpc]\nlisten = 127.0.0.1\nport = {self.rpc_port}\nenroll_port = {self.enroll_port}\n"
            f"[agent]\ncontroller_url = wss://127.0.0.1:{self.rpc_port}/agent\n"
            f"[compute]\ncompute_driver = fake\nfake_host_count = {self.hosts}\n"
            "fake_vcpus = 64\nfake_memory_mb = 262144\nfake_local_gb = 10000\n"
            "[scheduler]\ncpu_allocation_ratio = 16\nmax_instances_per_host = 100000\n"
            # No default network: bootstrap would give the fake hosts' servers addresses on a
            # real br100 with dnsmasq, which the benchmarks do not measure and which outlive
            # the run (an agent leaves its bridges, as nova-network did).
            "[network]\ndefault_network = false\n"
        )
        return path

    def cloudd(self, *args: str, config: str = "cloudd.conf") -> list[str]:
        return [sys.executable, "-m", "cloudd", "--config", str(self.workdir / config), *args]

    def enrolled_agent_config(self, env: dict[str, str]) -> str:
        """The agent's config: the cloud's, plus the join token `cloudd manage host enroll`
        makes for its host name (as an operator does for a new host)."""
        host = next(line.split("=", 1)[1].strip() for line in
                    (self.workdir / "cloudd.conf").read_text().splitlines()
                    if line.startswith("host ="))
        enrolled = subprocess.run(self.cloudd("manage", "host", "enroll", host), check=True,
                                  capture_output=True, text=True, env=env)
        (self.workdir / "agent.conf").write_text(
            (self.workdir / "cloudd.conf").read_text()
            + f"[cert]\njoin_token = {enrolled.stdout.split()[-1]}\n")
        return "agent.conf"

    async def start(self) -> None:
        self.write_config()
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        subprocess.run(self.cloudd("manage", "bootstrap", "--clouds-yaml",
                                   str(self.workdir / "clouds.yaml")),
                       check=True, capture_output=True, env=env)
        # The benchmark boots hundreds of servers in the admin project: no quota in the way.
        subprocess.run(self.cloudd("manage", "quota", "set", "admin", "instances=-1", "cores=-1",
                                   "ram=-1"), check=True, capture_output=True, env=env)
        started = time.monotonic()
        log = open(self.workdir / "controller.log", "wb")
        self.procs["controller"] = subprocess.Popen(self.cloudd("serve"), stdout=log, stderr=log,
                                                    env=env)
        async with aiohttp.ClientSession() as session:
            while True:
                try:
                    async with session.get(self.base + "/compute/v2.1") as resp:
                        if resp.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                if self.procs["controller"].poll() is not None:
                    raise RuntimeError("controller died; see " + str(self.workdir / "controller.log"))
                await asyncio.sleep(0.02)
        self.start_seconds = time.monotonic() - started
        alog = open(self.workdir / "agent.log", "wb")
        self.procs["agent"] = subprocess.Popen(
            self.cloudd("agent", config=self.enrolled_agent_config(env)), stdout=alog, stderr=alog,
            env=env)
        self.token = await self.get_token()
        await self.wait_hosts()

    async def get_token(self) -> str:
        password = (self.workdir / "state" / "admin-password").read_text().strip()
        body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
            "name": "admin", "domain": {"id": "default"}, "password": password}}},
            "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}}}
        async with aiohttp.ClientSession() as session, \
                session.post(self.base + "/identity/v3/auth/tokens", json=body) as resp:
            resp.raise_for_status()
            return resp.headers["X-Subject-Token"]

    async def wait_hosts(self) -> None:
        async with aiohttp.ClientSession(headers=self.headers) as session:
            for _ in range(600):
                async with session.get(self.base + "/compute/v2.1/os-hypervisors") as resp:
                    body = await resp.json()
                    if len(body.get("hypervisors", [])) >= self.hosts:
                        return
                await asyncio.sleep(0.1)
        raise RuntimeError("the agent's hosts never registered")

    @property
    def headers(self) -> dict[str, str]:
        return {"X-Auth-Token": self.token, "X-OpenStack-Nova-API-Version": "2.47"}

    def memory(self) -> dict[str, dict[str, float]]:
        return {name: memory_of(proc.pid) for name, proc in self.procs.items()}

    async def image_ref(self, session: aiohttp.ClientSession) -> str:
        """An image to boot: a tiny one uploaded through Image v2 when it is served."""
        async with session.post(self.base + "/image/v2/images", json={
                "name": "bench", "disk_format": "raw", "container_format": "bare",
                "visibility": "public"}) as resp:
            if resp.status != 201:
                return str(uuid.uuid4())
            image = await resp.json()
        async with session.put(self.base + f"/image/v2/images/{image['id']}/file", data=b"x" * 1024,
                               headers={"Content-Type": "application/octet-stream"}):
            pass
        return str(image["id"])

    def stop(self) -> None:
        for proc in self.procs.values():
            proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()


def percentile(values: list[float], pct: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))
    return ordered[index]


def describe(values: list[float]) -> dict[str, Any]:
    return {"n": len(values), "p50": percentile(values, 50), "p95": percentile(values, 95)}


async def boot_until_active(session: aiohttp.ClientSession, cloud: BenchCloud, image: str,
                            flavor: str = "1") -> str:
    """The issue's client flow for one server: POST, then GET every 0.2 s until ACTIVE."""
    servers = cloud.base + "/compute/v2.1/servers"
    body = {"server": {"name": f"b-{uuid.uuid4().hex[:6]}", "imageRef": image, "flavorRef": flavor}}
    async with session.post(servers, json=body) as resp:
        if resp.status != 202:
            raise RuntimeError(f"create failed: {resp.status} {await resp.text()}")
        server_id = str((await resp.json())["server"]["id"])
    while True:
        async with session.get(f"{servers}/{server_id}") as resp:
            status = (await resp.json())["server"]["status"]
        if status == "ACTIVE":
            return server_id
        if status == "ERROR":
            raise RuntimeError(f"server {server_id} went to ERROR")
        await asyncio.sleep(0.2)


async def boot_cycle(session: aiohttp.ClientSession, cloud: BenchCloud, image: str,
                     latencies: list[float]) -> None:
    """One boot+delete as a client does it: boot until ACTIVE (its latency appended), DELETE,
    then GET every 0.2 s until 404 (`make bench` and `make soak`)."""
    servers = cloud.base + "/compute/v2.1/servers"
    started = time.monotonic()
    server_id = await boot_until_active(session, cloud, image)
    latencies.append(time.monotonic() - started)
    async with session.delete(f"{servers}/{server_id}") as resp:
        if resp.status not in (202, 204):
            raise RuntimeError(f"delete failed: {resp.status} {await resp.text()}")
    while True:
        async with session.get(f"{servers}/{server_id}") as resp:
            if resp.status == 404:
                return
        await asyncio.sleep(0.2)
