"""The cloud id: made once per cloud (per database), at the controller's first start.

Agents get it when they register (``Registered.cloud_id``) and write it into each libvirt
domain's cloudd metadata; it is what makes a domain this cloud's (see
``cloudd.agent.compute.drivers.libvirt_xml.DomainOwner``). Controllers sharing one PostgreSQL share it.
"""

from __future__ import annotations

import time
import uuid as uuidlib

from cloudd.db.base import Executor


async def ensure_cloud_id(db: Executor) -> str:
    """This database's cloud id, made now if it has none (a race of two controllers keeps one)."""
    await db.execute(
        "INSERT INTO cloud (singleton, cloud_id, created_at) VALUES (1, $1, $2)"
        " ON CONFLICT (singleton) DO NOTHING", str(uuidlib.uuid4()), time.time())
    cloud_id = await db.fetchval("SELECT cloud_id FROM cloud WHERE singleton = 1")
    return str(cloud_id)
