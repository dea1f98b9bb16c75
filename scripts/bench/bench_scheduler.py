"""Scheduling decisions per second over 1,000 and 10,000 synthetic hosts.

Run: .venv/bin/python scripts/bench/bench_scheduler.py [--seconds 2] [--hosts 1000 10000]

Each decision is one single-instance request through the default filter list and all three
weighers; hosts differ in size, usage, zone and health so the filters do real work. Host states
are rebuilt when they fill up, outside the timed section.
"""

from __future__ import annotations

import argparse
import random
import time

from cloudd.scheduler import (
    FlavorSpec,
    HostState,
    ImageSpec,
    RequestSpec,
    RetrySpec,
    SchedulerHints,
    make_scheduler,
)


def synthetic_hosts(count: int, rng: random.Random) -> list[HostState]:
    hosts: list[HostState] = []
    for index in range(count):
        memory_mb = rng.choice((65536, 131072, 262144))
        memory_used = rng.randrange(0, memory_mb // 2)
        local_gb = rng.choice((500, 1000, 2000))
        local_gb_used = rng.randrange(0, local_gb // 2)
        hosts.append(
            HostState(
                host=f"compute{index:05d}",
                nodename=f"compute{index:05d}.lab",
                uuid=f"node-{index:05d}",
                availability_zone=rng.choice(("nova", "nova", "zone-b")),
                hypervisor_type="QEMU",
                hypervisor_version=6002000,
                supported_instances=[("x86_64", "qemu", "hvm"), ("x86_64", "kvm", "hvm")],
                cpu_info={"vendor": rng.choice(("Intel", "AMD"))},
                vcpus_total=rng.choice((16, 32, 64)),
                vcpus_used=rng.randrange(0, 64),
                memory_mb_total=memory_mb,
                memory_mb_used=memory_used,
                free_ram_mb=memory_mb - memory_used,
                local_gb_total=local_gb,
                local_gb_used=local_gb_used,
                free_disk_mb=(local_gb - local_gb_used) * 1024,
                num_instances=rng.randrange(0, 30),
                service_up=rng.random() > 0.02,
                service_disabled=rng.random() < 0.02,
                instance_uuids={f"vm-{index}-{n}" for n in range(3)},
            )
        )
    return hosts


def sample_spec() -> RequestSpec:
    return RequestSpec(
        flavor=FlavorSpec(memory_mb=4096, vcpus=2, root_gb=40,
                          extra_specs={"capabilities:cpu_info:vendor": "<or> Intel <or> AMD"}),
        image=ImageSpec(properties={"architecture": "x86_64", "hypervisor_type": "qemu"}),
        availability_zone="nova",
        scheduler_hints=SchedulerHints(different_host=["vm-1-0", "vm-2-0"]),
        retry=RetrySpec(num_attempts=2, hosts=["compute00003"]),
    )


def measure(host_count: int, seconds: float) -> float:
    rng = random.Random(42)
    scheduler = make_scheduler("filter_scheduler", rng=rng)
    spec = sample_spec()
    hosts = synthetic_hosts(host_count, rng)
    decisions = 0
    elapsed = 0.0
    while elapsed < seconds:
        started = time.perf_counter()
        for _ in range(20):
            scheduler.select_destinations(spec, hosts)
        elapsed += time.perf_counter() - started
        decisions += 20
        if decisions % 2000 == 0:
            hosts = synthetic_hosts(host_count, rng)  # keep capacity realistic, untimed
    return decisions / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="time per host count")
    parser.add_argument("--hosts", type=int, nargs="+", default=[1000, 10000])
    args = parser.parse_args()
    for host_count in args.hosts:
        rate = measure(host_count, args.seconds)
        print(f"{host_count:>6} hosts: {rate:8.1f} decisions/s  ({1000 / rate:6.2f} ms each)")


if __name__ == "__main__":
    main()
