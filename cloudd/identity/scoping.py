"""Whom a token is for and which project it is scoped to: the lookups and Keystone's rules."""

from __future__ import annotations

from cloudd.db import Executor
from cloudd.identity import store
from cloudd.identity.errors import AuthenticationRefused
from cloudd.identity.records import Project, User


async def find_user(db: Executor, user_id: str | None, name: str | None = None,
                    domain_id: str = "default") -> User | None:
    """The user by id, else by name in the domain; None when there is no such user."""
    if user_id:
        return await store.users.get(db, user_id)
    return await store.users.by_name(db, name, domain_id)


async def find_project(db: Executor, project_id: str | None, name: str | None = None,
                       domain_id: str = "default") -> Project | None:
    """The project by id, else by name in the domain; None when there is no such project."""
    if project_id:
        return await store.projects.get(db, project_id)
    return await store.projects.by_name(db, name, domain_id)


async def has_role(db: Executor, user_id: str, project_id: str) -> bool:
    return await store.roles.is_assigned(db, user_id, project_id)


async def check_scope(db: Executor, user: User, project: Project | None, asked: str) -> Project:
    """The project a token was asked for (`asked`: its id or name, for the message), if it
    exists, is enabled and the user has a role on it; AuthenticationRefused otherwise."""
    if project is None or not project.enabled:
        raise AuthenticationRefused(f"Unable to find or use project {asked}.")
    if not await has_role(db, user.id, project.id):
        raise AuthenticationRefused(f"User {user.id} has no access to project {project.id}.")
    return project


async def default_scope(db: Executor, user: User) -> Project | None:
    """Keystone scopes to the default project when no scope is asked and the user may use it."""
    if user.default_project_id:
        project = await store.projects.get(db, user.default_project_id)
        if project is not None and project.enabled and await has_role(db, user.id, project.id):
            return project
    return None
