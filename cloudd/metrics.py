"""Prometheus metrics: counters the code bumps as it works, and gauges read from the DB on scrape.

Counters and histograms live in one module-level registry per process, so a hook costs a dict
lookup and an add. What the database already knows (servers per vm_state, hosts up/down) is
collected at scrape time by `cloudd.api.metrics.DatabaseCollector`, never kept twice; GET
/metrics on the API port serves the text format (`cloudd.api.metrics.metrics_handler`). This
module imports nothing of cloudd, so RPC (in the agent too), the scheduler and the object store
count into it.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import sys
import time
from collections.abc import Awaitable, Callable

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

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



def asyncio_tasks() -> int:
    """Tasks alive on this thread's running loop (0 outside one): flat over a long run, or a
    leak (the soak run, `make soak`, checks it)."""
    try:
        return len(asyncio.all_tasks())
    except RuntimeError:
        return 0


def gc_objects() -> int:
    """Objects the garbage collector tracks: a leak of any container shows here first. One
    pass over them (a few ms for a controller), so it is read at scrape time only."""
    return len(gc.get_objects())


def allocated_blocks() -> int:
    """Memory blocks Python's allocator holds for live objects, strings and bytes too (which
    the collector does not track): a leak of anything shows here, and it costs nothing."""
    return sys.getallocatedblocks()


# Read when scraped (the controller's /metrics; the agent reports them in compute.host_health).
ASYNCIO_TASKS = Gauge("cloudd_asyncio_tasks", "asyncio tasks alive in this process.",
                      registry=REGISTRY)
ASYNCIO_TASKS.set_function(asyncio_tasks)
GC_OBJECTS = Gauge("cloudd_gc_objects", "Objects tracked by Python's garbage collector.",
                   registry=REGISTRY)
GC_OBJECTS.set_function(gc_objects)
ALLOCATED_BLOCKS = Gauge("cloudd_python_allocated_blocks",
                         "Memory blocks held by Python's allocator (sys.getallocatedblocks).",
                         registry=REGISTRY)
ALLOCATED_BLOCKS.set_function(allocated_blocks)

def observe_rpc_call(method: str, outcome: str, seconds: float) -> None:
    RPC_CALLS.labels(method, outcome).inc()
    RPC_LATENCY.labels(method).observe(seconds)


def observe_scheduling(success: bool) -> None:
    (SCHEDULER_DECISIONS if success else SCHEDULER_NO_VALID_HOST).inc()


# ----- the API side: a middleware that counts (the /metrics handler is cloudd.api.metrics) -----
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
