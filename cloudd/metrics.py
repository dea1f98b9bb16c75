"""Prometheus metrics: counters the code bumps as it works, and gauges read from the DB on scrape.

Counters and histograms live in one module-level registry per process, so a hook costs a dict
lookup and an add. What the database already knows (servers per vm_state, hosts up/down) is
collected at scrape time by `DatabaseCollector`, never kept twice. GET /metrics on the API port
serves the text format (`metrics_handler`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST

if TYPE_CHECKING:
    from cloudd.core import ServiceHost

LOG = logging.getLogger(__name__)
REGISTRY = CollectorRegistry(auto_describe=True)

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

API_REQUESTS = Counter("cloudd_api_requests", "API requests by route, method and status.",
                       ("route", "method", "status"), registry=REGISTRY)
API_LATENCY = Histogram("cloudd_api_request_seconds", "API request latency by route and method.",
                        ("route", "method"), buckets=_LATENCY_BUCKETS, registry=REGISTRY)
RPC_CALLS = Counter("cloudd_rpc_calls", "RPC calls made, by method and outcome (ok, timeout, error).",
                    ("method", "outcome"), registry=REGISTRY)
RPC_LATENCY = Histogram("cloudd_rpc_call_seconds", "RPC call latency by method.", ("method",),
                        buckets=_LATENCY_BUCKETS, registry=REGISTRY)
SCHEDULER_DECISIONS = Counter("cloudd_scheduler_decisions", "Successful placements (claims made).",
                              registry=REGISTRY)
SCHEDULER_NO_VALID_HOST = Counter("cloudd_scheduler_no_valid_host", "Requests no host could take.",
                                  registry=REGISTRY)
AGENTS_CONNECTED = Gauge("cloudd_agents_connected", "Agents with a live websocket to this controller.",
                         registry=REGISTRY)
CONSOLE_SESSIONS = Counter("cloudd_console_sessions",
                           "Console sessions relayed (browser websocket to a guest's VNC server).",
                           registry=REGISTRY)
CONSOLE_SESSIONS_OPEN = Gauge("cloudd_console_sessions_open", "Console sessions being relayed now.",
                              registry=REGISTRY)
OBJECTSTORE_BYTES = Counter("cloudd_objectstore_bytes",
                            "Object bytes the S3 API received (in: PUT, part uploads) and sent (out: GET).",
                            ("direction",), registry=REGISTRY)


def observe_rpc_call(method: str, outcome: str, seconds: float) -> None:
    RPC_CALLS.labels(method, outcome).inc()
    RPC_LATENCY.labels(method).observe(seconds)


def observe_scheduling(success: bool) -> None:
    (SCHEDULER_DECISIONS if success else SCHEDULER_NO_VALID_HOST).inc()


# ----- the API side: a middleware that counts, and the /metrics handler -----------------------
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _route_of(request: web.Request) -> str:
    """The route template (/compute/v2.1/servers/{server_id}), never the raw path: ids would make
    one time series per server. Sub-app routes already carry their mount prefix."""
    info = request.match_info
    resource = info.route.resource if info is not None else None
    return resource.canonical if resource is not None else "unmatched"


@web.middleware
async def metrics_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        route = _route_of(request)
        API_REQUESTS.labels(route, request.method, str(status)).inc()
        API_LATENCY.labels(route, request.method).observe(time.perf_counter() - started)


class DatabaseCollector:
    """Gauges read from the database when Prometheus scrapes (filled by `refresh`)."""

    def __init__(self) -> None:
        self.rows: dict[str, list[tuple[tuple[str, ...], float]]] = {}

    async def refresh(self, host: ServiceHost) -> None:
        from cloudd.db.service import DatabaseService

        db = host.get(DatabaseService).db
        down_time = host.config.service.service_down_time
        states = await db.fetch(
            "SELECT vm_state, COUNT(*) AS n FROM instances WHERE deleted = 0 GROUP BY vm_state")
        services = await db.fetch(
            'SELECT host, "binary", forced_down, last_seen_up, updated_at FROM services')
        now = time.time()
        up = sum(1 for s in services if not s["forced_down"]
                 and (s["last_seen_up"] or s["updated_at"] or 0) >= now - down_time)
        self.rows = {
            "servers": [((str(r["vm_state"]),), float(r["n"])) for r in states],
            "hosts": [(("up",), float(up)), (("down",), float(len(services) - up))],
        }
        # Read at scrape time rather than hooked into the conductor: the dict is the truth.
        from cloudd.conductor.service import ConductorService

        conductor = host.find(ConductorService)
        if conductor is not None:
            AGENTS_CONNECTED.set(sum(1 for peer in conductor.agents.values() if not peer.closed))
        stored = await db.fetchrow(
            "SELECT COUNT(*) AS n, COALESCE(SUM(size), 0) AS total FROM bucket_objects")
        self.rows["objects"] = [((), float(stored["n"]))] if stored else []
        self.rows["stored"] = [((), float(stored["total"]))] if stored else []
        pool = _pool_use(db)
        self.rows["pool"] = [((k,), float(v)) for k, v in pool.items()]

    def collect(self) -> Iterable[Metric]:
        families = {
            "servers": GaugeMetricFamily("cloudd_servers", "Servers by vm_state.", labels=["vm_state"]),
            "hosts": GaugeMetricFamily("cloudd_services", "Compute services by state (heartbeat).",
                                       labels=["state"]),
            "pool": GaugeMetricFamily("cloudd_db_pool_connections",
                                      "PostgreSQL pool connections (size, idle).", labels=["kind"]),
            "objects": GaugeMetricFamily("cloudd_objectstore_objects", "Objects in the S3 store."),
            "stored": GaugeMetricFamily("cloudd_objectstore_stored_bytes",
                                        "Bytes of the objects in the S3 store."),
        }
        for key, family in families.items():
            for labels, value in self.rows.get(key, []):
                family.add_metric(list(labels), value)
            yield family


def _pool_use(db: Any) -> dict[str, int]:
    """asyncpg's pool size and idle count when that is what the database is (cheap: no query)."""
    pool = getattr(db, "pool", None) or getattr(db, "_pool", None)
    if pool is None or not hasattr(pool, "get_size"):
        return {}
    return {"size": int(pool.get_size()), "idle": int(pool.get_idle_size())}


# One per process, like the registry: every controller in a process (tests) shares it.
DB_COLLECTOR = DatabaseCollector()
REGISTRY.register(DB_COLLECTOR)


async def metrics_handler(request: web.Request) -> web.Response:
    from cloudd.api.service import HOST_KEY

    try:
        await DB_COLLECTOR.refresh(request.app[HOST_KEY])
    except Exception:  # metrics must still answer when the database is unwell
        LOG.warning("metrics: reading the database failed", exc_info=True)
    body = generate_latest(REGISTRY)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
