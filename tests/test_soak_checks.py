"""The soak run's verdicts (scripts/bench/soak_checks.py, `make soak`): flat is ok, growth past a
bound is a violation, and only the history Nova keeps may grow in the database."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts" / "bench"))
import soak_checks


def process(pss: float = 60.0, fds: int = 8, tasks: int = 8) -> dict[str, float]:
    return {"pss_mib": pss, "anon_mib": pss - 10, "fds": fds, "asyncio_tasks": tasks,
            "gc_objects": 80000, "allocated_blocks": 300000}


def sample(cycles: int, rows: dict[str, int], **controller: Any) -> dict[str, Any]:
    return {"cycles": cycles, "seconds": 1.0, "controller": process(**controller),
            "agent": process(), "rows": rows}


def result(final: dict[str, Any]) -> dict[str, Any]:
    baseline = sample(0, {"instances": 0, "instances (deleted)": 500, "instance_actions": 1000,
                          "tokens": 2})
    return {"cycles_asked": 1000, "cycles_done": 1000, "failed": 0, "warmup_failed": 0,
            "errors": [], "stopped_early": False, "rate": 40.0, "seconds": 25.0,
            "create_to_active": {"n": 1000, "p50": 0.2, "p95": 0.3},
            "baseline": baseline, "final": final, "samples": [baseline, final]}


def failed(verdicts: list[soak_checks.Verdict]) -> list[str]:
    return [v.measure for v in verdicts if not v.ok]


def test_flat_processes_and_history_rows_pass() -> None:
    final = sample(1000, {"instances": 0, "instances (deleted)": 1500,
                          "instance_actions": 3000, "tokens": 2}, pss=62.0)
    verdicts = soak_checks.judge(result(final), 30)
    assert failed(verdicts) == []
    history = next(v for v in verdicts if v.measure == "rows instance_actions")
    assert history.note.startswith("2.00/cycle")
    assert "VIOLATION" not in soak_checks.table({"sqlite": result(final)}, {"sqlite": verdicts})


def test_growth_past_the_bounds_is_a_violation() -> None:
    final = sample(1000, {"instances": 1, "instances (deleted)": 1500, "instance_actions": 3000,
                          "tokens": 3}, pss=75.0, fds=20, tasks=30)
    assert failed(soak_checks.judge(result(final), 30)) == [
        "controller PSS MiB", "controller anonymous MiB", "controller open fds",
        "controller asyncio tasks", "live servers (instances)", "rows tokens"]


def test_a_run_stopped_early_or_with_failed_cycles_is_a_violation() -> None:
    run = result(sample(1000, {"instances": 0, "tokens": 2}))
    run.update(stopped_early=True, failed=2, errors=["RuntimeError: server x went to ERROR"])
    assert failed(soak_checks.judge(run, 30))[:2] == ["cycles done", "failed cycles"]
