"""Flavors and their access lists (tables `flavors`, `flavor_projects`): every statement on them
the controller runs, returning `Flavor` records decoded once.

A private flavor (is_public false) is visible to, and usable by, admins and the projects on its
access list only (`may_use`).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from cloudd.compute.instances import FlavorSnapshot, decode_json
from cloudd.db import Executor

# Nova's classic flavors, plus m1.nano for the tiny test guest: (flavorid, name, memory_mb, vcpus,
# root_gb), made by `cloudd manage bootstrap` (`ensure_defaults`).
DEFAULT_FLAVORS = (
    ("0", "m1.nano", 128, 1, 1),
    ("1", "m1.tiny", 512, 1, 1),
    ("2", "m1.small", 2048, 1, 20),
    ("3", "m1.medium", 4096, 2, 40),
    ("4", "m1.large", 8192, 4, 80),
    ("5", "m1.xlarge", 16384, 8, 160),
)

# The flavor fields an instance keeps as its own snapshot (instances.flavor, a resize's flavors).
SNAPSHOT_FIELDS = ("flavorid", "name", "memory_mb", "vcpus", "root_gb", "ephemeral_gb", "swap")


@dataclass(frozen=True)
class Flavor:
    id: int
    flavorid: str
    name: str
    memory_mb: int
    vcpus: int
    root_gb: int
    ephemeral_gb: int
    swap: int
    rxtx_factor: float
    is_public: bool
    disabled: bool
    description: str | None
    extra_specs: dict[str, str]
    created_at: float

    @classmethod
    def from_row(cls, row: Any) -> Flavor:
        return cls(id=int(row["id"]), flavorid=str(row["flavorid"]), name=str(row["name"]),
                   memory_mb=int(row["memory_mb"]), vcpus=int(row["vcpus"]),
                   root_gb=int(row["root_gb"]), ephemeral_gb=int(row["ephemeral_gb"]),
                   swap=int(row["swap"]), rxtx_factor=float(row["rxtx_factor"]),
                   is_public=bool(row["is_public"]), disabled=bool(row["disabled"]),
                   description=row["description"], extra_specs=decode_json(row["extra_specs"]),
                   created_at=float(row["created_at"]))

    def snapshot(self) -> FlavorSnapshot:
        """What an instance records of its flavor (its `flavor` column)."""
        return FlavorSnapshot(extra_specs=dict(self.extra_specs),
                              **{k: getattr(self, k) for k in SNAPSHOT_FIELDS})


def flavorid_of(ref: str | int) -> str:
    """The flavor id a reference names: the id itself or a link ending in it."""
    return str(ref).rstrip("/").rsplit("/", 1)[-1]


async def get(db: Executor, flavorid: str) -> Flavor | None:
    row = await db.fetchrow("SELECT * FROM flavors WHERE flavorid = $1 AND deleted = 0", flavorid)
    return None if row is None else Flavor.from_row(row)


async def get_by_name(db: Executor, name: str) -> Flavor | None:
    row = await db.fetchrow("SELECT * FROM flavors WHERE name = $1 AND deleted = 0", name)
    return None if row is None else Flavor.from_row(row)


async def get_by_id_or_name(db: Executor, key: str) -> Flavor | None:
    row = await db.fetchrow(
        "SELECT * FROM flavors WHERE (flavorid = $1 OR name = $1) AND deleted = 0", key)
    return None if row is None else Flavor.from_row(row)


async def list_all(db: Executor, by_size: bool = False) -> list[Flavor]:
    """The flavors by id (by memory then name with `by_size`)."""
    order = "memory_mb, name" if by_size else "flavorid"
    rows = await db.fetch(f"SELECT * FROM flavors WHERE deleted = 0 ORDER BY {order}")
    return [Flavor.from_row(r) for r in rows]


async def create(db: Executor, *, flavorid: str, name: str, memory_mb: int, vcpus: int,
                 root_gb: int, ephemeral_gb: int, swap: int, rxtx_factor: float, is_public: bool,
                 description: str | None, now: float) -> Flavor:
    """The new flavor (DuplicateError when its name or id is taken)."""
    row = await db.fetchrow(
        "INSERT INTO flavors (flavorid, name, memory_mb, vcpus, root_gb, ephemeral_gb, swap,"
        " rxtx_factor, is_public, description, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7,"
        " $8, $9, $10, $11) RETURNING *",
        flavorid, name, memory_mb, vcpus, root_gb, ephemeral_gb, swap, rxtx_factor,
        int(is_public), description, now)
    assert row is not None
    return Flavor.from_row(row)


async def ensure_defaults(db: Executor) -> None:
    """Create each of DEFAULT_FLAVORS whose flavor id is not taken (idempotent, as bootstrap is;
    the columns not given keep the table's defaults)."""
    for flavorid, name, memory_mb, vcpus, root_gb in DEFAULT_FLAVORS:
        if await db.fetchval("SELECT 1 FROM flavors WHERE flavorid = $1", flavorid):
            continue
        await db.execute(
            "INSERT INTO flavors (flavorid, name, memory_mb, vcpus, root_gb, created_at)"
            " VALUES ($1, $2, $3, $4, $5, $6)",
            flavorid, name, memory_mb, vcpus, root_gb, time.time())


async def mark_deleted(db: Executor, flavor_id: int, tombstone: str) -> None:
    """Soft-delete, freeing the unique name and id for reuse (`tombstone` takes their place)."""
    await db.execute("UPDATE flavors SET deleted = 1, name = $1, flavorid = $1 WHERE id = $2",
                     tombstone, flavor_id)


async def set_extra_specs(db: Executor, flavor_id: int, specs: dict[str, Any]) -> None:
    await db.execute("UPDATE flavors SET extra_specs = $1 WHERE id = $2", json.dumps(specs),
                     flavor_id)


# ----- access lists ---------------------------------------------------------------------------
async def may_use(db: Executor, flavor: Flavor, project_id: str | None, is_admin: bool) -> bool:
    """Whether the project may see and boot `flavor`."""
    if flavor.is_public or is_admin:
        return True
    found = await db.fetchval(
        "SELECT COUNT(*) FROM flavor_projects WHERE flavor_id = $1 AND project_id = $2",
        flavor.id, project_id)
    return bool(found)


async def ids_shared_with(db: Executor, project_id: str | None) -> set[int]:
    """The ids of the flavors whose access list has the project."""
    rows = await db.fetch("SELECT flavor_id FROM flavor_projects WHERE project_id = $1",
                          project_id)
    return {int(r["flavor_id"]) for r in rows}


async def access_list(db: Executor, flavor_id: int) -> list[str]:
    rows = await db.fetch("SELECT project_id FROM flavor_projects WHERE flavor_id = $1"
                          " ORDER BY project_id", flavor_id)
    return [str(r["project_id"]) for r in rows]


async def add_access(db: Executor, flavor_id: int, project_id: str) -> None:
    """DuplicateError when the project is on the list already."""
    await db.execute("INSERT INTO flavor_projects (flavor_id, project_id) VALUES ($1, $2)",
                     flavor_id, project_id)


async def remove_access(db: Executor, flavor_id: int, project_id: str) -> bool:
    """Whether the project was on the list."""
    removed = await db.execute(
        "DELETE FROM flavor_projects WHERE flavor_id = $1 AND project_id = $2",
        flavor_id, project_id)
    return bool(removed)
