"""The identity family's records, as the repository (cloudd.identity.store) decodes them once:
booleans as `bool`, JSON columns parsed, timestamps as `float`."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Project:
    id: str
    name: str
    description: str
    domain_id: str
    enabled: bool
    created_at: float


@dataclass(frozen=True)
class User:
    id: str
    name: str
    domain_id: str
    password_hash: str       # scrypt, see cloudd.identity.passwords; never shown
    default_project_id: str | None
    email: str | None
    enabled: bool
    created_at: float


@dataclass(frozen=True)
class Role:
    id: str
    name: str


@dataclass(frozen=True)
class RoleAssignment:
    """A role of a user on a project, with the three names (GET /v3/role_assignments)."""
    user_id: str
    project_id: str
    role_id: str
    user_name: str
    project_name: str
    role_name: str


@dataclass(frozen=True)
class Ec2Credential:
    """An access/secret pair bound to one user on one project."""
    access: str
    secret: str
    user_id: str
    project_id: str
    created_at: float


@dataclass(frozen=True)
class CredentialGrant:
    """What an EC2 credential stands for when a signature names it (S3 and EC2), read on every
    use: its user's and project's names, whether both are enabled, and the role names of the
    user on the project (implied ones included; cloudd.identity.credentials fills them)."""
    access: str
    secret: str
    user_id: str
    user_name: str
    project_id: str
    project_name: str
    enabled: bool
    roles: tuple[str, ...] = ()


@dataclass(frozen=True)
class TokenUser:
    """Whom a token is for, as its body names the user."""
    id: str
    name: str
    domain_id: str


@dataclass(frozen=True)
class TokenProject:
    """The project a token is scoped to, as its body names it."""
    id: str
    name: str
    domain_id: str


@dataclass(frozen=True)
class TokenData:
    """An issued token as stored (the token itself is never kept, only its sha256) and as the
    APIs see it."""
    id_hash: str
    user: TokenUser
    project: TokenProject | None     # None when unscoped
    roles: tuple[Role, ...]          # implied roles included, by name
    methods: list[str]
    audit_ids: list[str]
    issued_at: float
    expires_at: float
