"""The scheduler service: reads host states from the database, picks hosts, claims them atomically.

The pick is made in memory by a driver (filter or chance scheduler); the claim is a conditional
UPDATE of the node's usage that only succeeds while the node still has room within its
allocation ratios. So two schedulers (two coroutines, or two controllers on one PostgreSQL) can
never oversubscribe a node: the loser of a race re-reads the hosts and picks again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from cloudd.compute import hosts, instances
from cloudd.core import Service, ServiceHealth, ServiceHost
from cloudd.db import Database, DatabaseError, Executor
from cloudd.db.service import DatabaseService
from cloudd.metrics import observe_scheduling
from cloudd.scheduler.drivers import BaseScheduler, make_scheduler
from cloudd.scheduler.exceptions import NoValidHost
from cloudd.scheduler.host_state import HostState
from cloudd.scheduler.request import FlavorSpec, RequestSpec

LOG = logging.getLogger(__name__)

CACHE_SECONDS = 1.0
HEAL_DRIFT_INTERVAL = 2.0


def flavor_usage(flavor: FlavorSpec) -> tuple[int, int, int]:
    return flavor.vcpus, flavor.memory_mb, flavor.root_gb + flavor.ephemeral_gb


async def claim(db: Executor, node: str, flavor: FlavorSpec) -> bool:
    return await hosts.claim(db, node, *flavor_usage(flavor))


async def release(db: Executor, node: str, flavor: FlavorSpec) -> None:
    await hosts.release(db, node, *flavor_usage(flavor))


class SchedulerHealth(ServiceHealth):
    decisions: int
    no_valid_host: int


class SchedulerService(Service):
    name = "scheduler"
    depends = ("database",)

    def __init__(self, host: ServiceHost) -> None:
        super().__init__(host)
        cfg = host.config.scheduler
        self.driver: BaseScheduler = make_scheduler(
            cfg.driver,
            [f.strip() for f in cfg.enabled_filters.split(",") if f.strip()],
            ram_weight_multiplier=cfg.ram_weight_multiplier,
            cpu_weight_multiplier=cfg.cpu_weight_multiplier,
            disk_weight_multiplier=cfg.disk_weight_multiplier,
            host_subset_size=cfg.host_subset_size,
            max_attempts=cfg.max_attempts,
            max_instances_per_host=cfg.max_instances_per_host,
        )
        # One decision at a time per controller keeps the in-memory pick and the claim together;
        # across controllers the conditional UPDATE does the same job.
        self._lock = asyncio.Lock()
        self._cache: list[HostState] | None = None
        self._cache_at = 0.0
        self.decisions = 0
        self.no_valid_host = 0
        # A claim, its record or a release failed half-way (the database went away): usage may
        # have drifted from the instances, so the next decision heals it first.
        self._drifted = False

    @property
    def db(self) -> Database:
        return self.host.get(DatabaseService).db

    async def start(self) -> None:
        await self.heal()
        self.host.periodic(HEAL_DRIFT_INTERVAL, self.heal_if_drifted, "heal drifted claims", self)

    async def heal_if_drifted(self) -> None:
        """Once the database answers again after a failed claim, record or release."""
        if self._drifted:
            async with self._lock:
                await self._heal(None)
                self._drifted = False
                self.invalidate()
            LOG.info("node usage recomputed after a database failure")

    async def heal(self, host: str | None = None) -> None:
        """Recompute node usage from the instances (of one host, or all).

        Under the scheduling lock, so that it never runs between a claim and the instance row
        that records it (see `select_and_claim`'s `record`).
        """
        async with self._lock:
            await self._heal(host)

    async def _heal(self, host: str | None) -> None:
        await hosts.heal(self.db, host)

    async def host_states(self, spec: RequestSpec, fresh: bool = False) -> list[HostState]:
        """The hosts as the scheduler sees them.

        Reading and decoding every node for every decision dominated at 1,000 hosts, so the view
        is cached for CACHE_SECONDS: picks made here `consume` the cached states in memory, and
        anything the cache misses (another controller's claims, releases) only makes a claim
        fail or a pick look full, and both cases retry with a fresh view.
        """
        needs_instances = bool(spec.scheduler_hints.same_host or spec.scheduler_hints.different_host)
        now = time.monotonic()
        if (not fresh and not needs_instances and self._cache is not None
                and now - self._cache_at < CACHE_SECONDS):
            return self._cache
        down_time = self.host.config.service.service_down_time
        wall = time.time()
        rows = await hosts.node_rows_for_scheduler(self.db)
        uuids_by_node = await self._instances_by_node(spec) if needs_instances else {}
        states = []
        for row in rows:
            seen = row["service_last_seen_up"]
            up = bool(seen and wall - seen <= down_time and not row["service_forced_down"])
            states.append(HostState.from_row(
                row, up, bool(row["service_disabled"]),
                uuids_by_node.get(row["hypervisor_hostname"], set()),
            ))
        if not needs_instances:
            self._cache, self._cache_at = states, now
        return states

    def invalidate(self) -> None:
        self._cache = None

    async def _instances_by_node(self, spec: RequestSpec) -> dict[str, set[str]]:
        """Only SameHost/DifferentHost need instance lists: skip the query otherwise."""
        hints = spec.scheduler_hints
        if not (hints.same_host or hints.different_host):
            return {}
        wanted = set(hints.same_host) | set(hints.different_host)
        out: dict[str, set[str]] = {}
        for uuid, node in await instances.placed(self.db):
            if uuid in wanted:
                out.setdefault(node, set()).add(uuid)
        return out

    async def select_and_claim(
        self, spec: RequestSpec,
        record: Callable[[list[HostState]], Awaitable[None]] | None = None,
    ) -> list[HostState]:
        """Hosts for every instance of `spec`, their resources already claimed in the database.

        `record` writes the placement into the instance rows while the lock is still held.
        """
        async with self._lock:
            if self._drifted:
                await self._heal(None)
                self._drifted = False
                self.invalidate()
            try:
                return await self._select_and_claim(spec, record)
            except DatabaseError:
                self._drifted = True
                raise

    async def _select_and_claim(
        self, spec: RequestSpec, record: Callable[[list[HostState]], Awaitable[None]] | None,
    ) -> list[HostState]:
        """The body of `select_and_claim`, under its lock."""
        fresh = False
        for _attempt in range(5):
            hosts = await self.host_states(spec, fresh=fresh)
            try:
                chosen = self.driver.select_destinations(spec, hosts)
            except NoValidHost:
                if not fresh:  # maybe only the cached view is full: look again
                    fresh = True
                    continue
                self.no_valid_host += 1
                observe_scheduling(False)
                raise
            claimed: list[HostState] = []
            for state in chosen:
                if not await claim(self.db, state.nodename, spec.flavor):
                    break
                claimed.append(state)
            if len(claimed) == len(chosen):
                self.decisions += 1
                observe_scheduling(True)
                if record is not None:
                    await record(chosen)
                return chosen
            # Someone else (another controller) took the room first: undo, re-read, retry.
            for state in claimed:
                await release(self.db, state.nodename, spec.flavor)
            self.invalidate()
            fresh = True
            LOG.info("claim lost a race on %s; scheduling again", chosen[len(claimed)].nodename)
        self.no_valid_host += 1
        observe_scheduling(False)
        raise NoValidHost("No valid host was found. Claims kept failing on every chosen host.")

    async def detach_and_release(self, node: str, flavor: FlavorSpec,
                                 detach: Callable[[], Awaitable[bool]]) -> bool:
        """Run `detach` (the instance row stops holding `node`'s resources) and, if it did,
        release them, under the scheduling lock: a heal between the two would count the
        instance out once and the release would take it out a second time."""
        async with self._lock:
            if not await detach():
                return False
            await self.release(node, flavor)
            return True

    async def release(self, node: str, flavor: FlavorSpec) -> None:
        """Give back a claim. Callers that also change the instance row use
        `detach_and_release`; this alone is for a claim no row records yet."""
        try:
            await release(self.db, node, flavor)
        except DatabaseError:
            self._drifted = True
            raise
        if self._cache is not None:  # give the room back in the cached view too
            for state in self._cache:
                if state.nodename == node:
                    state.release(RequestSpec(flavor=flavor))
                    break

    def health(self) -> SchedulerHealth:
        return SchedulerHealth(**self.state_fields(), decisions=self.decisions,
                               no_valid_host=self.no_valid_host)
