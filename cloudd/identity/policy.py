"""Who is calling and what Nova's policy lets them do: the caller of a request, made from its
validated token, with the modern defaults (`reader` reads its project, `member` acts on its
project, `admin` does everything). The HTTP layer makes one per request (cloudd.api.auth)."""

from __future__ import annotations

from dataclasses import dataclass

from cloudd import errors
from cloudd.identity.records import TokenData


class PolicyForbidden(errors.Forbidden):
    """A policy check failed; auth_middleware turns it into a 403 in the sub-app's error format."""

    def __init__(self, message: str = "You are not authorized to perform the requested action.")\
            -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class RequestContext:
    user_id: str
    user_name: str
    project_id: str | None
    project_name: str | None
    roles: frozenset[str]
    is_admin: bool
    token_hash: str
    request_id: str

    @classmethod
    def from_token(cls, token: TokenData, request_id: str) -> RequestContext:
        roles = frozenset(role.name for role in token.roles)
        project = token.project
        return cls(user_id=token.user.id, user_name=token.user.name,
                   project_id=project.id if project else None,
                   project_name=project.name if project else None,
                   roles=roles, is_admin="admin" in roles, token_hash=token.id_hash,
                   request_id=request_id)

    def can_read(self, project_id: str | None) -> bool:
        """Nova's PROJECT_READER_OR_ADMIN."""
        return self.is_admin or (project_id == self.project_id and "reader" in self.roles)

    def can_act(self, project_id: str | None) -> bool:
        """Nova's PROJECT_MEMBER_OR_ADMIN."""
        return self.is_admin or (project_id == self.project_id and "member" in self.roles)

    def require_role(self, role: str) -> None:
        if not (self.is_admin or role in self.roles):
            raise PolicyForbidden()

    def require_admin(self) -> None:
        if not self.is_admin:
            raise PolicyForbidden()

    def require_read(self, project_id: str | None) -> None:
        if not self.can_read(project_id):
            raise PolicyForbidden()

    def require_act(self, project_id: str | None) -> None:
        if not self.can_act(project_id):
            raise PolicyForbidden()
