"""Who calls. An :class:`Authenticator` turns the ``X-Auth-Token`` into a :class:`Caller`:
:class:`NoAuth` is Cinder's noauth, made safe (``X-Auth-Token: user:project``; admins only by
configuration); ``services.api.edge.keystone.KeystoneAuth`` validates Keystone tokens."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from cindermesh.errors import MalformedUrl, NotAuthenticated

__all__ = [
    "ADMIN_ROLES",
    "MEMBER_ROLES",
    "Authenticator",
    "Caller",
    "NoAuth",
    "authenticate",
    "check_url_project",
]


#: The roles of a noauth caller: Cinder's default roles, ``admin`` for configured admins.
MEMBER_ROLES = frozenset({"member", "reader"})
ADMIN_ROLES = frozenset({"admin", "member", "reader"})


@dataclass(frozen=True)
class Caller:
    """Who calls: from the token only (noauth's ``user:project``, or Keystone's token data)."""

    user_id: str
    project_id: str
    roles: frozenset[str] = MEMBER_ROLES
    user_domain_id: str = "default"
    project_domain_id: str = "default"

    @property
    def is_admin(self) -> bool:
        return "admin" in self.roles


def authenticate(token: str | None, admin_users: tuple[str, ...]) -> Caller:
    """``user:project`` with the user's configured roles; ``user:project:roles`` narrows them
    to the comma-separated ``roles`` (``u1:p:reader``: a reader only; ``u1:p:``: no role),
    never beyond them (401 otherwise)."""
    if not token or not token.isascii() or not token.isprintable():
        # A token is printable ASCII (gRPC hands over other bytes as Latin-1).
        raise NotAuthenticated("The request you have made requires authentication.")
    user_id, sep, project_id = token.partition(":")
    project_id, narrowed, named_roles = project_id.partition(":")
    if not sep:
        # Cinder's noauth takes a bare token as both user and project.
        project_id = user_id
    if not user_id or not project_id:
        raise NotAuthenticated("The request you have made requires authentication.")
    roles = ADMIN_ROLES if user_id in admin_users else MEMBER_ROLES
    if narrowed:
        asked = frozenset(role for role in named_roles.split(",") if role)
        if not asked <= roles:
            raise NotAuthenticated("The request you have made requires authentication.")
        roles = asked
    return Caller(user_id=user_id, project_id=project_id, roles=roles)


class Authenticator(Protocol):
    """The edge's way to a caller; ``challenge`` is the response headers of a 401."""

    @property
    def challenge(self) -> Sequence[tuple[str, str]]: ...

    async def caller(self, token: str | None) -> Caller:
        """The token's caller; ``NotAuthenticated`` (401) if none, ``BackendUnavailable``
        (503) if the token cannot be checked now."""
        ...

    async def close(self) -> None: ...


class NoAuth:
    """Cinder's noauth: the token names the caller (:func:`authenticate`)."""

    challenge: Sequence[tuple[str, str]] = ()

    def __init__(self, admin_users: tuple[str, ...]) -> None:
        self._admin_users = admin_users

    async def caller(self, token: str | None) -> Caller:
        return authenticate(token, self._admin_users)

    async def close(self) -> None:
        return None


def check_url_project(caller: Caller, url_project_id: str) -> None:
    """A project in the URL must be the token's (Cinder: 400 "Malformed request url")."""
    if url_project_id and url_project_id != caller.project_id:
        raise MalformedUrl()
