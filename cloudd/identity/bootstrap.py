"""First-run set-up: the admin project and user, the default roles, client files (the default
flavors are the compute domain's: `cloudd.compute.flavors.ensure_defaults`).

Like `keystone-manage bootstrap` plus DevStack's clouds.yaml: idempotent, so `make run` can call
it at every start; the password is generated once and kept in a 0600 file.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from pathlib import Path
from typing import Any

import yaml

from cloudd.db import Database
from cloudd.identity import store
from cloudd.identity.passwords import generate_password, hash_password

ROLES = ("admin", "member", "reader")


async def ensure_role(db: Database, name: str) -> str:
    role = await store.roles.by_name(db, name)
    if role:
        return role.id
    role_id = uuid.uuid4().hex
    await store.roles.insert(db, role_id, name)
    return role_id


async def ensure_project(db: Database, name: str, description: str = "") -> str:
    project = await store.projects.by_name(db, name)
    if project:
        return project.id
    project_id = uuid.uuid4().hex
    await store.projects.insert(db, project_id, name, description, True, time.time())
    return project_id


async def bootstrap(db: Database, state_dir: Path) -> dict[str, Any]:
    """Create what is missing; return the admin credentials."""
    role_ids = {name: await ensure_role(db, name) for name in ROLES}
    project_id = await ensure_project(db, "admin", "Bootstrap project for the cloud's administrators")
    await ensure_project(db, "service", "Service users")
    password_file = state_dir / "admin-password"
    user = await store.users.by_name(db, "admin")
    if user is None or not password_file.exists():
        password = generate_password()
        _write_private(password_file, password + "\n")
        password_hash = await asyncio.to_thread(hash_password, password)  # ~50 ms of scrypt
        if user is None:
            user_id = uuid.uuid4().hex
            await store.users.insert(db, user_id, "admin", password_hash, project_id, time.time())
        else:
            user_id = user.id
            await store.users.set_password_hash(db, user_id, password_hash)
    else:
        user_id = user.id
        password = password_file.read_text().strip()
    for role in ROLES:  # Keystone's implied roles, made explicit: admin => member => reader
        await store.roles.assign(db, user_id, project_id, role_ids[role])
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
