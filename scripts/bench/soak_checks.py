"""The soak run's verdicts: the end (a quiet sample after the cycles) against the warm-up.

Bounds, per process (controller, agent):
- PSS may grow by at most PSS_GROWTH_MIB after the warm-up. CPython does not give freed memory
  back to the system at once (pymalloc keeps arenas that hold one live object, glibc keeps
  fragmented heap), so a flat process still wanders by a few MiB; a leak of one kilobyte per
  cycle is 10 MiB over the full 10,000 cycles, which this bound catches. PSS also moves as
  other processes map the same libraries; the anonymous memory (the heap alone) has the same
  bound and does not.
- open file descriptors and asyncio tasks back to their warm-up count, plus a small constant for
  what may be open or running at the moment of the sample (a heartbeat, a pooled connection).
- objects the garbage collector tracks: at most GC_SLACK_OBJECTS more, plus GC_PER_CYCLE per
  cycle (a leak of one object per cycle is twice that); and the blocks Python's allocator holds
  (strings and bytes too, which the collector does not see): BLOCK_SLACK plus BLOCKS_PER_CYCLE.
Rows: no live server is left, and every table returns to its warm-up count, except the history
Nova keeps as well until `nova-manage db archive_deleted_rows`: soft-deleted servers
(`instances (deleted)`), their action records (`instance_actions`, `instance_action_events`,
shown by os-instance-actions for deleted servers too) and their faults; and the keys of the
agents' reports the conductor applied (`agent_reports`, pruned after a day). Their growth is
printed per cycle.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

PSS_GROWTH_MIB = 10.0
FD_SLACK = 3
TASK_SLACK = 3
GC_SLACK_OBJECTS = 5000
GC_PER_CYCLE = 0.5
BLOCK_SLACK = 20000
BLOCKS_PER_CYCLE = 1.0
HISTORY_TABLES = ("instances (deleted)", "instance_actions", "instance_action_events",
                  "instance_faults", "instance_faults (deleted)",
                  # the idempotency keys of applied agent reports: pruned after a day
                  "agent_reports")


@dataclass
class Verdict:
    measure: str
    warmup: float
    end: float
    peak: float
    bound: str
    ok: bool
    note: str = ""


def _process_verdicts(result: dict[str, Any], process: str) -> list[Verdict]:
    base, end = result["baseline"][process], result["final"][process]
    samples = [s[process] for s in result["samples"]] + [end]
    cycles = result["cycles_done"]
    gc_bound = GC_SLACK_OBJECTS + GC_PER_CYCLE * cycles
    block_bound = BLOCK_SLACK + BLOCKS_PER_CYCLE * cycles

    def verdict(key: str, label: str, limit: float, bound: str) -> Verdict:
        peak = max(s[key] for s in samples)
        growth = end[key] - base[key]
        per_cycle = growth * 1024 / max(1, cycles) if key.endswith("_mib") else \
            growth / max(1, cycles)
        unit = " KiB" if key.endswith("_mib") else ""
        return Verdict(f"{process} {label}", base[key], end[key], peak, bound, growth <= limit,
                       f"{per_cycle:+.2f}{unit}/cycle")

    return [verdict("pss_mib", "PSS MiB", PSS_GROWTH_MIB, f"+{PSS_GROWTH_MIB:g}"),
            verdict("anon_mib", "anonymous MiB", PSS_GROWTH_MIB, f"+{PSS_GROWTH_MIB:g}"),
            verdict("fds", "open fds", FD_SLACK, f"+{FD_SLACK}"),
            verdict("asyncio_tasks", "asyncio tasks", TASK_SLACK, f"+{TASK_SLACK}"),
            verdict("gc_objects", "gc objects", gc_bound, f"+{gc_bound:.0f}"),
            verdict("allocated_blocks", "allocator blocks", block_bound, f"+{block_bound:.0f}")]


def _row_verdicts(result: dict[str, Any]) -> list[Verdict]:
    base, end = result["baseline"]["rows"], result["final"]["rows"]
    cycles = max(1, result["cycles_done"])
    peaks: dict[str, int] = {}
    for s in result["samples"] + [result["final"]]:
        for table, count in s["rows"].items():
            peaks[table] = max(peaks.get(table, 0), count)
    verdicts = [Verdict("live servers (instances)", base.get("instances", 0),
                        end.get("instances", 0), peaks.get("instances", 0), "0",
                        end.get("instances", 0) == 0)]
    unchanged = [table for table in set(base) | set(end) if table not in HISTORY_TABLES
                 and table != "instances" and base.get(table, 0) == end.get(table, 0)]
    verdicts.append(Verdict(f"rows of {len(unchanged)} other tables", sum(base.get(t, 0) for t in unchanged),
                            sum(end.get(t, 0) for t in unchanged),
                            sum(peaks.get(t, 0) for t in unchanged), "warm-up", True,
                            "each back to its warm-up count"))
    for table in sorted(set(base) | set(end)):
        before, after = base.get(table, 0), end.get(table, 0)
        if table == "instances" or table in unchanged:
            continue
        if table in HISTORY_TABLES:
            verdicts.append(Verdict(f"rows {table}", before, after, peaks.get(table, 0),
                                    "history", True,
                                    f"{(after - before) / cycles:.2f}/cycle, kept as Nova does"))
        else:
            verdicts.append(Verdict(f"rows {table}", before, after, peaks.get(table, 0),
                                    "warm-up", after <= before))
    return verdicts


def judge(result: dict[str, Any], max_minutes: float) -> list[Verdict]:
    done, failed = result["cycles_done"], result["failed"] + result["warmup_failed"]
    verdicts = [
        Verdict("cycles done", result["cycles_asked"], done, done,
                f"all in {max_minutes:g} min", not result["stopped_early"] and done > 0,
                f"{result['rate']:.1f}/s"),
        Verdict("failed cycles", 0, failed, failed, "0", failed == 0,
                "; ".join(result["errors"][:2])),
    ]
    if "process_exits" in result:
        verdicts.append(Verdict("processes exited cleanly", 0, 1, 1, "yes", False,
                                str(result["process_exits"])))
    for process in ("controller", "agent"):
        verdicts.extend(_process_verdicts(result, process))
    return verdicts + _row_verdicts(result)


def _num(value: float) -> str:
    return str(int(value)) if value == int(value) else f"{value:.1f}"


def table(results: dict[str, Any], verdicts: dict[str, list[Verdict]]) -> str:
    lines = [f"{'backend':<11} {'measure':<36} {'warm-up':>10} {'end':>10} {'peak':>10} "
             f"{'bound':>14}  result", "-" * 110]
    for backend, backend_verdicts in verdicts.items():
        for v in backend_verdicts:
            lines.append(f"{backend:<11} {v.measure:<36} {_num(v.warmup):>10} {_num(v.end):>10} "
                         f"{_num(v.peak):>10} {v.bound:>14}  {'ok' if v.ok else 'VIOLATION'}"
                         + (f"  {v.note}" if v.note else ""))
        res = results[backend]
        lat = res["create_to_active"]
        lines.append(f"{backend:<11} {res['cycles_done']} cycles in {res['seconds']:.0f} s "
                     f"({res['rate']:.1f}/s), create->ACTIVE p50 {lat['p50']:.3f} s, "
                     f"p95 {lat['p95']:.3f} s")
    return "\n".join(lines)
