"""Two processes, two trees (issue 17): importing the agent's entry point loads nothing of the
controller — no API, no database, no controller service. Checked on ``sys.modules`` of a fresh
interpreter, since this test process has long imported everything."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Modules only the controller runs (prefixes: a package and everything below it).
CONTROLLER_ONLY = (
    "cloudd.api",
    "cloudd.db",
    "cloudd.cert.service",
    "cloudd.cert.enroll",
    "cloudd.cert.admission",
    "cloudd.cert.enrolment_listener",
    "cloudd.conductor",
    "cloudd.scheduler",
    "cloudd.network.service",
    "cloudd.network.ipam",
    "cloudd.network.floating",
    "cloudd.network.hoststate",
    "cloudd.network.metadata",
    "cloudd.network.secgroups",
    "cloudd.network.defaults",
    "cloudd.frontdoor.compute",
    "cloudd.compute.instances",
    "cloudd.compute.quota",
    "cloudd.image.records",
    "cloudd.image.data",
    "cloudd.image.transfer",
    "cloudd.objectstore",
    "cloudd.identity",
    "cloudd.controller",
    "cloudd.manage",
)


def loaded_by(statement: str) -> list[str]:
    code = f"{statement}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True,
                         capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT)}).stdout
    names: list[str] = json.loads(out)
    return [name for name in names if name == "cloudd" or name.startswith("cloudd.")]


def controller_modules(names: list[str]) -> list[str]:
    return [name for name in names
            if any(name == prefix or name.startswith(prefix + ".") for prefix in CONTROLLER_ONLY)]


def test_the_agent_entry_point_loads_no_controller_module() -> None:
    names = loaded_by("from cloudd.agent.service import build_agent")
    assert "cloudd.agent.service" in names
    assert controller_modules(names) == []


def test_a_running_agent_loads_no_controller_module(tmp_path: Path) -> None:
    # Started (fake driver, network manager, metadata proxy) and trying to enrol with a
    # controller that is not there: what runs, not only what the entry point imports.
    names = loaded_by(f"""
import asyncio
from cloudd.agent.service import build_agent
from cloudd.config import CloudConfig

async def main() -> None:
    cfg = CloudConfig()
    cfg.default.host = "agent1"
    cfg.default.state_dir = {str(tmp_path / "state")!r}
    cfg.agent.controller_url = "wss://127.0.0.1:1/agent"
    cfg.agent.reconnect_max_backoff = 0.2
    cfg.compute.compute_driver = "fake"
    cfg.compute.instances_path = {str(tmp_path / "instances")!r}
    cfg.network.metadata_proxy_port = 0
    host = build_agent(cfg)
    await host.start()
    await asyncio.sleep(0.5)
    await host.stop()

asyncio.run(main())
""")
    assert "cloudd.agent.compute.drivers.fake" in names
    assert controller_modules(names) == []


def test_the_drivers_load_no_controller_module() -> None:
    # The fake driver is what load_driver imports at run time in tests and simulated hosts.
    names = loaded_by("import cloudd.agent.compute.drivers.fake")
    assert controller_modules(names) == []


def test_the_controller_only_list_names_real_modules() -> None:
    # A renamed controller module must not silently drop out of the check above.
    names = loaded_by("import cloudd.controller, cloudd.manage, cloudd.cert.admission,"
                      " cloudd.cert.enrolment_listener, cloudd.network.defaults, cloudd.image.data")
    missing = [prefix for prefix in CONTROLLER_ONLY
               if not any(n == prefix or n.startswith(prefix + ".") for n in names)]
    assert missing == []
