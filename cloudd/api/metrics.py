"""GET /metrics on the API port: Prometheus's text format of cloudd.metrics' registry.

The gauges the database knows are read at scrape time (`DatabaseCollector`, registered in that
registry when the API is loaded); the agents connected are counted here, from the conductor
service's dict. Both live here, in the controller's API, so cloudd.metrics (which the agent
loads through cloudd.rpc) imports neither the database nor the conductor.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import Any

from aiohttp import web
from prometheus_client import generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from cloudd.api.keys import HOST_KEY
from cloudd.compute import hosts, instances
from cloudd.conductor.service import ConductorService
from cloudd.core import ServiceHost
from cloudd.db.service import DatabaseService
from cloudd.metrics import AGENTS_CONNECTED, REGISTRY
from cloudd.objectstore import meta

LOG = logging.getLogger(__name__)


class DatabaseCollector:
    """Gauges read from the database when Prometheus scrapes (filled by `refresh`)."""

    def __init__(self) -> None:
        self.rows: dict[str, list[tuple[tuple[str, ...], float]]] = {}

    async def refresh(self, host: ServiceHost, agents_connected: int | None = None) -> None:
        db = host.get(DatabaseService).db
        down_time = host.config.service.service_down_time
        states = await instances.count_by_vm_state(db)
        services = await hosts.services(db)
        now = time.time()
        up = sum(1 for s in services if not s.forced_down
                 and (s.last_heard or 0) >= now - down_time)
        self.rows = {
            "servers": [((state,), float(n)) for state, n in states.items()],
            "hosts": [(("up",), float(up)), (("down",), float(len(services) - up))],
        }
        # Read at scrape time rather than hooked into the conductor: its dict is the truth (the
        # API's /metrics handler counts it and passes it in; None when no conductor runs here).
        if agents_connected is not None:
            AGENTS_CONNECTED.set(agents_connected)
        objects, stored_bytes = await meta.stored_totals(db)
        self.rows["objects"] = [((), float(objects))]
        self.rows["stored"] = [((), float(stored_bytes))]
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
    host = request.app[HOST_KEY]
    conductor = host.find(ConductorService)
    agents = (None if conductor is None
              else sum(1 for peer in conductor.agents.values() if not peer.closed))
    try:
        await DB_COLLECTOR.refresh(host, agents)
    except Exception:  # metrics must still answer when the database is unwell
        LOG.warning("metrics: reading the database failed", exc_info=True)
    body = generate_latest(REGISTRY)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
