"""The service catalog carried by project-scoped tokens, built from [api] public_url."""

from __future__ import annotations

import uuid
from typing import Any

from cloudd.api.ec2.service import Ec2Service
from cloudd.api.service import ApiService
from cloudd.core import Service, ServiceHost
from cloudd.objectstore.service import ObjectstoreService

REGION = "RegionOne"

# (type, name, path under public_url): always present.
CORE_SERVICES: list[tuple[str, str, str]] = [
    ("identity", "keystone", "/identity"),
    ("compute", "nova", "/compute/v2.1"),
    ("image", "glance", "/image"),
    ("network", "neutron", "/network"),
]

# (service class, type, name, path): listed only when that service runs in the host.
OPTIONAL_SERVICES: list[tuple[type[Service], str, str, str]] = [
    (ObjectstoreService, "object-store", "s3", ""),  # its own port: its public_url
    (Ec2Service, "ec2", "ec2", ""),  # its own port: its public_url
]


def _mounted(host: ServiceHost, path: str) -> bool:
    """Only APIs that really answer go in the catalog: clients treat a listed but dead
    endpoint as an error (`server list` fails on an image endpoint that does not answer)."""
    api = host.find(ApiService)
    prefix = "/" + path.strip("/").split("/")[0]
    return api is None or any(mounted == prefix for mounted, _ in api.subapps)


def catalog_entries(host: ServiceHost) -> list[tuple[str, str, str]]:
    """(type, name, absolute URL) of every service the catalog lists for this host."""
    base = host.config.api.public_url.rstrip("/")
    entries = [(kind, name, base + path) for kind, name, path in CORE_SERVICES
               if _mounted(host, path)]
    for service, kind, name, path in OPTIONAL_SERVICES:
        running = host.find(service)
        if running is not None:
            # A service on its own port publishes its absolute URL ("" while it serves nothing).
            own_url = getattr(running, "public_url", None)
            if own_url is None or own_url:
                entries.append((kind, name, own_url or base + path))
    return entries


def _stable_id(*parts: str) -> str:
    # Ids stay the same across restarts, as a real Keystone's stored ids do.
    return uuid.uuid5(uuid.NAMESPACE_URL, "/".join(parts)).hex


def build_catalog(host: ServiceHost) -> list[dict[str, Any]]:
    catalog = []
    for kind, name, url in catalog_entries(host):
        endpoints = [
            {"id": _stable_id(url, interface), "interface": interface, "region_id": REGION,
             "region": REGION, "url": url}
            for interface in ("public", "internal", "admin")
        ]
        catalog.append({"type": kind, "name": name, "id": _stable_id(url), "endpoints": endpoints})
    return catalog
