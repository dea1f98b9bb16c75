"""The real processes: `cloudd serve` and `cloudd all-in-one` start, answer /healthz, stop on
SIGTERM with exit code 0."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_config(tmp_path: Path) -> tuple[Path, int]:
    api, rpc, enroll = free_port(), free_port(), free_port()
    path = tmp_path / "cloudd.conf"
    path.write_text(
        f"[DEFAULT]\nstate_dir = {tmp_path / 'state'}\nhost = testhost\n"
        f"[api]\nlisten = 127.0.0.1\nport = {api}\n"
        f"[rpc]\nlisten = 127.0.0.1\nport = {rpc}\nenroll_port = {enroll}\n"
        f"[agent]\ncontroller_url = wss://127.0.0.1:{rpc}/agent\n"
        "[compute]\ncompute_driver = fake\n"
        "[objectstore]\nlisten = 127.0.0.1\nport = 0\n"
        "[vnc]\nnovncproxy_host = 127.0.0.1\nnovncproxy_port = 0\n"
    )
    return path, api


def healthz(port: int) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def wait_healthy(proc: subprocess.Popen[str], port: int, want: set[str]) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    last: dict[str, Any] = {}
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()[1]
        try:
            status, last = healthz(port)
            if status == 200 and want <= set(last["services"]):
                return last
        except OSError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"not healthy: {last}")


@pytest.mark.parametrize(("command", "services"), [
    ("serve", {"database", "scheduler", "conductor", "api"}),
    ("all-in-one", {"database", "scheduler", "conductor", "api", "agent"}),
])
def test_start_healthz_sigterm(tmp_path: Path, command: str, services: set[str]) -> None:
    config, port = write_config(tmp_path)
    proc = subprocess.Popen(
        [sys.executable, "-m", "cloudd", "--config", str(config), command],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        report = wait_healthy(proc, port, services)
        assert report["status"] == "ok"
        assert all(s["state"] == "running" for s in report["services"].values())
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err
        assert "Traceback" not in err
        assert "stopping api" in err and "stopping database" in err
        # Stopped in reverse order of start.
        assert err.index("stopping api") < err.index("stopping database")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
