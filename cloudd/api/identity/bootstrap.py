"""First-run set-up: the admin project and user, the default roles and flavors, client files.

Like `keystone-manage bootstrap` plus DevStack's clouds.yaml: idempotent, so `make run` can call
it at every start; the password is generated once and kept in a 0600 file.
"""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path
from typing import Any

import yaml

from cloudd.api.identity.passwords import generate_password, hash_password
from cloudd.db import Database

ROLES = ("admin", "member", "reader")

# Nova's classic flavors, plus m1.nano for the tiny test guest.
DEFAULT_FLAVORS = (
    ("0", "m1.nano", 128, 1, 1),
    ("1", "m1.tiny", 512, 1, 1),
    ("2", "m1.small", 2048, 1, 20),
    ("3", "m1.medium", 4096, 2, 40),
    ("4", "m1.large", 8192, 4, 80),
    ("5", "m1.xlarge", 16384, 8, 160),
)


async def ensure_role(db: Database, name: str) -> str:
    row = await db.fetchrow("SELECT id FROM roles WHERE name = $1", name)
    if row:
        return str(row["id"])
    role_id = uuid.uuid4().hex
    await db.execute("INSERT INTO roles (id, name) VALUES ($1, $2)", role_id, name)
    return role_id


async def ensure_project(db: Database, name: str, description: str = "") -> str:
    row = await db.fetchrow("SELECT id FROM projects WHERE name = $1", name)
    if row:
        return str(row["id"])
    project_id = uuid.uuid4().hex
    await db.execute(
        "INSERT INTO projects (id, name, description, created_at) VALUES ($1, $2, $3, $4)",
        project_id, name, description, time.time(),
    )
    return project_id


async def ensure_flavors(db: Database) -> None:
    for flavorid, name, ram, vcpus, disk in DEFAULT_FLAVORS:
        exists = await db.fetchval("SELECT 1 FROM flavors WHERE flavorid = $1", flavorid)
        if not exists:
            await db.execute(
                "INSERT INTO flavors (flavorid, name, memory_mb, vcpus, root_gb, created_at)"
                " VALUES ($1, $2, $3, $4, $5, $6)",
                flavorid, name, ram, vcpus, disk, time.time(),
            )


async def bootstrap(db: Database, state_dir: Path) -> dict[str, Any]:
    """Create what is missing; return the admin credentials."""
    role_ids = {name: await ensure_role(db, name) for name in ROLES}
    project_id = await ensure_project(db, "admin", "Bootstrap project for the cloud's administrators")
    await ensure_project(db, "service", "Service users")
    password_file = state_dir / "admin-password"
    user = await db.fetchrow("SELECT id FROM users WHERE name = 'admin'")
    if user is None or not password_file.exists():
        password = generate_password()
        _write_private(password_file, password + "\n")
        if user is None:
            user_id = uuid.uuid4().hex
            await db.execute(
                "INSERT INTO users (id, name, password_hash, default_project_id, created_at)"
                " VALUES ($1, 'admin', $2, $3, $4)",
                user_id, hash_password(password), project_id, time.time(),
            )
        else:
            user_id = str(user["id"])
            await db.execute(
                "UPDATE users SET password_hash = $1 WHERE id = $2", hash_password(password), user_id
            )
    else:
        user_id = str(user["id"])
        password = password_file.read_text().strip()
    for role in ROLES:  # Keystone's implied roles, made explicit: admin => member => reader
        await db.execute(
            "INSERT INTO role_assignments (user_id, project_id, role_id) VALUES ($1, $2, $3)"
            " ON CONFLICT DO NOTHING",
            user_id, project_id, role_ids[role],
        )
    await ensure_flavors(db)
    return {"username": "admin", "password": password, "project_name": "admin",
            "user_id": user_id, "project_id": project_id, "password_file": str(password_file)}


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.chmod(path, 0o600)


def write_client_files(creds: dict[str, Any], auth_url: str, state_dir: Path,
                       clouds_yaml: Path) -> list[Path]:
    """An openrc in the state dir and a `cloudd` entry merged into clouds.yaml."""
    openrc = state_dir / "openrc"
    _write_private(openrc, "".join(f"export {k}={v}\n" for k, v in {
        "OS_AUTH_URL": auth_url, "OS_USERNAME": creds["username"],
        "OS_PASSWORD": creds["password"], "OS_PROJECT_NAME": creds["project_name"],
        "OS_USER_DOMAIN_NAME": "Default", "OS_PROJECT_DOMAIN_NAME": "Default",
        "OS_IDENTITY_API_VERSION": "3", "OS_REGION_NAME": "RegionOne", "OS_INTERFACE": "public",
    }.items()))
    entry = {"auth": {"auth_url": auth_url, "username": creds["username"],
                      "password": creds["password"], "project_name": creds["project_name"],
                      "user_domain_name": "Default", "project_domain_name": "Default"},
             "region_name": "RegionOne", "interface": "public", "identity_api_version": 3}
    _write_private(clouds_yaml, _merge_clouds_yaml(clouds_yaml, "cloudd", entry))
    return [openrc, clouds_yaml]


def _merge_clouds_yaml(path: Path, name: str, entry: dict[str, Any]) -> str:
    """Replace our entry and keep every other cloud, as DevStack does."""
    data: dict[str, Any] = {}
    if path.exists():
        loaded = yaml.safe_load(path.read_text())
        if isinstance(loaded, dict):
            data = loaded
    clouds = data.get("clouds")
    if not isinstance(clouds, dict):
        clouds = {}
    clouds[name] = entry
    data["clouds"] = clouds
    return str(yaml.safe_dump(data, default_flow_style=False, sort_keys=False))
