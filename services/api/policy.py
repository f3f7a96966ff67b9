"""Cinder's policy refusal: ``Policy doesn't allow <rule> to be performed.`` (403)."""

from __future__ import annotations

from cindermesh.errors import Forbidden
from services.api.edge.request_context import RequestContext

__all__ = ["policy_forbidden", "policy_message", "require_admin"]


def policy_message(rule: str) -> str:
    return f"Policy doesn't allow {rule} to be performed."


def policy_forbidden(rule: str) -> Forbidden:
    return Forbidden(policy_message(rule))


def require_admin(ctx: RequestContext, rule: str) -> None:
    """Rules that only admins pass."""
    if not ctx.caller.is_admin:
        raise policy_forbidden(rule)
