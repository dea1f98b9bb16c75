"""Roles and their assignment to users on projects: the rules (the statements are
cloudd.identity.store.roles').

Tokens carry the roles they were issued with, so removing an assignment revokes the user's
tokens on that project (cloudd.identity.tokens)."""

from __future__ import annotations

from cloudd.db import Executor
from cloudd.identity import store
from cloudd.identity.errors import IdentityNotFound
from cloudd.identity.projects import get_project
from cloudd.identity.records import Project, Role, RoleAssignment, User
from cloudd.identity.tokens import revoke_user_tokens
from cloudd.identity.users import get_user


async def get_role(db: Executor, role_id: str) -> Role:
    """The role, or IdentityNotFound (Keystone's 404 message)."""
    role = await store.roles.get(db, role_id)
    if role is None:
        raise IdentityNotFound(f"Could not find role: {role_id}.")
    return role


async def list_roles(db: Executor, name: str | None = None) -> list[Role]:
    return await store.roles.list_by_name(db, name)


async def project_and_user(db: Executor, project_id: str, user_id: str) -> tuple[Project, User]:
    """Both, or IdentityNotFound for the first one missing (the project first)."""
    project = await get_project(db, project_id)
    user = await get_user(db, user_id)
    return project, user


async def grant_role(db: Executor, project_id: str, user_id: str, role_id: str) -> None:
    project, user = await project_and_user(db, project_id, user_id)
    role = await get_role(db, role_id)
    await store.roles.assign(db, user.id, project.id, role.id)


async def revoke_role(db: Executor, project_id: str, user_id: str, role_id: str) -> None:
    """Remove the assignment and revoke the user's tokens on that project."""
    project, user = await project_and_user(db, project_id, user_id)
    if not await store.roles.unassign(db, user.id, project.id, role_id):
        raise IdentityNotFound(f"Could not find role assignment with role: {role_id}, user or "
                               f"group: {user.id}, project, domain, or system: "
                               f"{project.id}.")
    await revoke_user_tokens(db, user.id, project.id)


async def check_role(db: Executor, project_id: str, user_id: str, role_id: str) -> None:
    """IdentityNotFound unless the user has that role on the project."""
    project, user = await project_and_user(db, project_id, user_id)
    if not await store.roles.is_assigned(db, user.id, project.id, role_id):
        raise IdentityNotFound("Could not find role assignment.")


async def user_roles(db: Executor, project_id: str, user_id: str) -> list[Role]:
    """The roles assigned to the user on the project (implied ones not added), by name."""
    project, user = await project_and_user(db, project_id, user_id)
    return await store.roles.of_user_on_project(db, user.id, project.id)


async def list_role_assignments(db: Executor, user_id: str | None, project_id: str | None,
                                role_id: str | None) -> list[RoleAssignment]:
    """Assignments matching the filters given, with role, user and project names."""
    return await store.roles.assignments(db, user_id, project_id, role_id)
