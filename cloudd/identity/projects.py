"""Projects: their rules (the statements are cloudd.identity.store.projects'). Only the Default
domain exists, and projects do not nest."""

from __future__ import annotations

import time
import uuid

from cloudd.db import DuplicateError, Executor
from cloudd.identity import store
from cloudd.identity.errors import IdentityConflict, IdentityNotFound, InvalidIdentityRequest
from cloudd.identity.records import Project


def check_domain(domain_id: str | None) -> None:
    if domain_id not in (None, "default"):
        raise InvalidIdentityRequest(
            f"Domain {domain_id} does not exist: only 'default' is supported.")


def _duplicate(name: str | None) -> IdentityConflict:
    return IdentityConflict(
        f"Conflict occurred attempting to store project - duplicate name {name}.")


async def get_project(db: Executor, project_id: str) -> Project:
    """The project, or IdentityNotFound (Keystone's 404 message)."""
    project = await store.projects.get(db, project_id)
    if project is None:
        raise IdentityNotFound(f"Could not find project: {project_id}.")
    return project


async def find_by_id_or_name(db: Executor, id_or_name: str) -> Project | None:
    """The project with that id, else that name (`cloudd manage`'s way of naming one)."""
    return await store.projects.by_id_or_name(db, id_or_name)


async def names_by_id(db: Executor) -> dict[str, str]:
    """Every project's name, by id."""
    return await store.projects.names_by_id(db)


async def list_projects(db: Executor, name: str | None = None) -> list[Project]:
    return await store.projects.list_by_name(db, name)


async def create_project(db: Executor, name: str, description: str, enabled: bool,
                         domain_id: str | None = None, parent_id: str | None = None) -> Project:
    check_domain(domain_id)
    if parent_id not in (None, "default"):
        raise InvalidIdentityRequest("Nested projects are not supported.")
    project_id = uuid.uuid4().hex
    try:
        await store.projects.insert(db, project_id, name, description, enabled, time.time())
    except DuplicateError:
        raise _duplicate(name) from None
    return await get_project(db, project_id)


async def update_project(db: Executor, project_id: str, name: str | None,
                         description: str | None, enabled: bool | None) -> Project:
    """Change the fields given (None: keep); returns the updated project."""
    project = await get_project(db, project_id)
    try:
        await store.projects.update(
            db, project_id, name if name is not None else project.name,
            description if description is not None else project.description,
            enabled if enabled is not None else project.enabled)
    except DuplicateError:
        raise _duplicate(name) from None
    return await get_project(db, project_id)


async def delete_project(db: Executor, project_id: str) -> None:
    if not await store.projects.delete(db, project_id):
        raise IdentityNotFound(f"Could not find project: {project_id}.")


async def user_projects(db: Executor, user_id: str) -> list[Project]:
    """The projects the user has a role on, by name."""
    return await store.projects.of_user(db, user_id)
