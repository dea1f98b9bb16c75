"""`make soak`: thousands of boot/delete cycles (fake driver, c=20) on SQLite and PostgreSQL, and
nothing may grow but the history Nova keeps too.

Per backend: a fresh BenchCloud (`cloudd serve` + agent as real processes), a warm-up (caches,
pools, the allocator's arenas fill), a quiet sample, the cycles (the same client flow as `make
bench`: POST, poll until ACTIVE, DELETE, poll until 404) with a sample every tenth of them, and a
quiet sample at the end. The end is checked against the warm-up (soak_checks.py); the run exits
non-zero on any violation, prints a table and writes bench-results/soak-latest.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cloud import BenchCloud, boot_cycle, describe
from db_setup import backend_urls, fresh_database
from soak_checks import Verdict, judge, table
from soak_sample import Sample, process_log, sample

MAX_FAILED_CYCLES = 20  # past this the cloud is broken, not leaking: stop early
# One cycle takes well under a second; a server stuck in BUILD or DELETING must fail its cycle,
# not hold the run past its time bound.
CYCLE_TIMEOUT = 60.0


@dataclass
class CycleStats:
    done: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)


async def run_cycles(session: aiohttp.ClientSession, cloud: BenchCloud, image: str, count: int,
                     concurrency: int, deadline: float, stats: CycleStats) -> None:
    """`count` boot/delete cycles by `concurrency` clients; stops at the deadline (and says so
    through stats: fewer done than asked). A cycle that times out counts as failed."""
    claimed = 0

    async def client() -> None:
        nonlocal claimed
        while claimed < count and time.monotonic() < deadline and stats.failed <= MAX_FAILED_CYCLES:
            claimed += 1
            try:
                await asyncio.wait_for(boot_cycle(session, cloud, image, stats.latencies),
                                       CYCLE_TIMEOUT)
            except (RuntimeError, aiohttp.ClientError, TimeoutError) as exc:
                stats.failed += 1
                if len(stats.errors) < 5:
                    why = str(exc) or f"no end within {CYCLE_TIMEOUT:g} s"
                    stats.errors.append(f"{type(exc).__name__}: {why}")
            else:
                stats.done += 1

    await asyncio.gather(*(client() for _ in range(concurrency)))


async def quiet_sample(session: aiohttp.ClientSession, cloud: BenchCloud, cycles: int,
                       started: float) -> Sample:
    """A sample with nothing in flight: after a pause, the one of three (a second apart) with
    the fewest tasks, so that a heartbeat or periodic task caught mid-run does not count."""
    await asyncio.sleep(2)
    samples = []
    for _ in range(3):
        samples.append(await sample(session, cloud, cycles, started))
        await asyncio.sleep(1)
    return min(samples, key=lambda s: s.controller.asyncio_tasks + s.agent.asyncio_tasks)


async def sample_while_running(session: aiohttp.ClientSession, cloud: BenchCloud, name: str,
                               args: argparse.Namespace, stats: CycleStats, started: float,
                               samples: list[Sample]) -> None:
    """A sample each tenth of the cycles, taken beside the clients (they never pause for it);
    cancelled when the cycles end."""
    every = max(1, args.cycles // 10)
    next_at, cycles_started = every, time.monotonic()
    while True:
        if stats.done >= next_at:
            samples.append(await sample(session, cloud, stats.done, started))
            rate = stats.done / (time.monotonic() - cycles_started)
            print(f"[{name}] {stats.done}/{args.cycles} cycles, {rate:.1f}/s, controller PSS "
                  f"{samples[-1].controller.pss_mib:.1f} MiB, agent PSS "
                  f"{samples[-1].agent.pss_mib:.1f} MiB", flush=True)
            next_at += every
        await asyncio.sleep(0.2)


async def soak_cloud(cloud: BenchCloud, args: argparse.Namespace, name: str) -> dict[str, Any]:
    started = time.monotonic()
    deadline = started + args.max_minutes * 60
    async with aiohttp.ClientSession(headers=cloud.headers) as session:
        image = await cloud.image_ref(session)
        warm = CycleStats()
        print(f"[{name}] warm-up: {args.warmup} cycles", flush=True)
        await run_cycles(session, cloud, image, args.warmup, args.concurrency, deadline, warm)
        baseline = await quiet_sample(session, cloud, 0, started)
        samples = [baseline]
        stats = CycleStats()
        sampler = asyncio.create_task(
            sample_while_running(session, cloud, name, args, stats, started, samples))
        cycles_started = time.monotonic()
        try:
            await run_cycles(session, cloud, image, args.cycles, args.concurrency, deadline, stats)
        finally:
            sampler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sampler
        elapsed = time.monotonic() - cycles_started
        final = await quiet_sample(session, cloud, stats.done, started)
    return {"cycles_asked": args.cycles, "cycles_done": stats.done, "failed": stats.failed,
            "errors": stats.errors, "warmup_failed": warm.failed,
            "stopped_early": stats.done + stats.failed < args.cycles,
            "rate": stats.done / elapsed if elapsed else 0.0, "seconds": elapsed,
            "create_to_active": describe(stats.latencies),
            "baseline": asdict(baseline), "final": asdict(final),
            "samples": [asdict(s) for s in samples]}


async def soak_backend(name: str, url: str, args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="cloudd-soak-") as tmp:
        cloud = BenchCloud(Path(tmp), await fresh_database(url), args.hosts)
        try:
            await cloud.start()
            result = await soak_cloud(cloud, args, name)
        finally:
            cloud.stop()
        exits = {n: p.returncode for n, p in cloud.procs.items()}
        if any(code not in (0, -15) for code in exits.values()):
            result["process_exits"] = exits
            result["controller_log"] = process_log(Path(tmp) / "controller.log")
            result["agent_log"] = process_log(Path(tmp) / "agent.log")
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", nargs="+", default=["sqlite", "postgresql"])
    parser.add_argument("--cycles", type=int, default=10_000, help="per backend, after warm-up")
    parser.add_argument("--warmup", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--hosts", type=int, default=10, help="fake compute hosts of the agent")
    parser.add_argument("--max-minutes", type=float, default=30.0,
                        help="per backend: a run that has not finished by then is a violation")
    parser.add_argument("--out", default="bench-results")
    args = parser.parse_args()

    async def run_all() -> dict[str, dict[str, Any]]:
        urls = await backend_urls(args.backends)
        return {name: await soak_backend(name, url, args) for name, url in urls.items()}

    results = asyncio.run(run_all())
    verdicts: dict[str, list[Verdict]] = {name: judge(res, args.max_minutes)
                                          for name, res in results.items()}
    print()
    print(table(results, verdicts))
    out = Path(args.out)
    out.mkdir(exist_ok=True)
    latest = out / "soak-latest.json"
    if latest.exists():
        latest.replace(out / "soak-previous.json")
    latest.write_text(json.dumps({
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "args": vars(args),
        "results": results,
        "verdicts": {name: [asdict(v) for v in vs] for name, vs in verdicts.items()}}, indent=1))
    print(f"\nresults: {latest}")
    violations = [v for vs in verdicts.values() for v in vs if not v.ok]
    return 1 if violations else 0


if __name__ == "__main__":
    sys.exit(main())
