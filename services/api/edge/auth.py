"""Cinder's noauth, made safe: ``X-Auth-Token: user:project``; admins only by configuration."""

from __future__ import annotations

from dataclasses import dataclass

from cindermesh.errors import MalformedUrl, NotAuthenticated

__all__ = ["Caller", "authenticate"]


@dataclass(frozen=True)
class Caller:
    user_id: str
    project_id: str
    is_admin: bool


def authenticate(token: str | None, admin_users: tuple[str, ...]) -> Caller:
    if not token or not token.isascii() or not token.isprintable():
        # A token is printable ASCII (gRPC hands over other bytes as Latin-1).
        raise NotAuthenticated("The request you have made requires authentication.")
    user_id, sep, project_id = token.partition(":")
    if not sep:
        # Cinder's noauth takes a bare token as both user and project.
        project_id = user_id
    if not user_id or not project_id:
        raise NotAuthenticated("The request you have made requires authentication.")
    return Caller(user_id=user_id, project_id=project_id, is_admin=user_id in admin_users)


def check_url_project(caller: Caller, url_project_id: str) -> None:
    """A project in the URL must be the token's (Cinder: 400 "Malformed request url")."""
    if url_project_id and url_project_id != caller.project_id:
        raise MalformedUrl()
