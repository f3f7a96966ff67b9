"""Cinder's policies: one table of rules (``defaults.py``, overridable by ``[policy]`` in the
configuration), an evaluator of their check strings (``checks.py``) and Cinder's refusal,
``Policy doesn't allow <rule> to be performed.`` (403).

Every public RPC names its rule (``@rpc(policy=...)``); the edge authorizes it against the
caller's project before the method runs. Rules about a resource's owner, or checked at a
point Cinder checks them, are :func:`authorize`\\ d (or :func:`allowed`, for fields of a
view) by the domain code with the resource as target.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from cindermesh.errors import Forbidden
from services.api.policy.checks import Check, PolicySyntaxError, parse, rule_references
from services.api.policy.defaults import DEFAULT_RULES

if TYPE_CHECKING:
    from services.api.edge.auth import Caller
    from services.api.edge.request_context import RequestContext

__all__ = [
    "DEFAULT_ENFORCER",
    "Enforcer",
    "PolicyConfigError",
    "allowed",
    "authorize",
    "check_rule_name",
    "policy_forbidden",
    "policy_message",
    "require_admin",
]

#: A target: the resource's ``project_id`` and ``user_id`` (by default the caller's).
Target = Mapping[str, object]


class PolicyConfigError(ValueError):
    """``[policy]`` names a rule the table lacks, or a check string that does not parse."""


def policy_message(rule: str) -> str:
    return f"Policy doesn't allow {rule} to be performed."


def policy_forbidden(rule: str) -> Forbidden:
    return Forbidden(policy_message(rule))


def check_rule_name(name: str) -> str:
    """The name, if the table has such a rule (for RPCs declaring theirs)."""
    if name not in DEFAULT_RULES:
        raise ValueError(f"no policy rule {name!r} in the table")
    return name


class Enforcer:
    """The table with the configuration's overrides, parsed once (errors at load)."""

    def __init__(self, overrides: Mapping[str, str] | None = None) -> None:
        overrides = dict(overrides or {})
        unknown = sorted(set(overrides) - set(DEFAULT_RULES))
        if unknown:
            raise PolicyConfigError(f"[policy] names unknown rules: {', '.join(unknown)}")
        self._rules: dict[str, Check] = {}
        for name, default in DEFAULT_RULES.items():
            try:
                self._rules[name] = parse(overrides.get(name, default.check_str))
            except PolicySyntaxError as error:
                raise PolicyConfigError(f"[policy] {name}: {error}") from error
        self._check_references()

    def allowed(self, rule: str, caller: Caller, target: Target | None = None) -> bool:
        """Whether the rule passes for the caller on the target (default: the caller's project
        and user, as Cinder's ``context.authorize`` without one)."""
        check = self._rules[rule]
        if target is None:
            target = {"project_id": caller.project_id, "user_id": caller.user_id}
        creds: dict[str, object] = {
            "user_id": caller.user_id,
            "project_id": caller.project_id,
            "roles": frozenset(role.lower() for role in caller.roles),
            "user_domain_id": caller.user_domain_id,
            "project_domain_id": caller.project_domain_id,
            # Project-scoped tokens only: no system scope, no domain scope; Keystone's
            # admin project is not configured, so every project is it (oslo.context's default).
            "system_scope": None,
            "domain_id": None,
            "is_admin_project": True,
            "is_admin": False,
        }
        # Cinder's context.is_admin: the context_is_admin rule on the caller's roles.
        creds["is_admin"] = self._rules["context_is_admin"](target, creds, self._rules.get)
        return check(target, creds, self._rules.get)

    def _check_references(self) -> None:
        """Every ``rule:<name>`` names a rule, and no rule refers to itself through others."""
        for name, check in self._rules.items():
            for ref in rule_references(check):
                if ref not in self._rules:
                    raise PolicyConfigError(f"[policy] {name}: no rule {ref!r}")
        done: set[str] = set()

        def visit(name: str, path: tuple[str, ...]) -> None:
            if name in path:
                cycle = " -> ".join((*path, name))
                raise PolicyConfigError(f"[policy] rules refer to each other: {cycle}")
            if name in done:
                return
            for ref in rule_references(self._rules[name]):
                visit(ref, (*path, name))
            done.add(name)

        for name in self._rules:
            visit(name, ())


#: The table as Cinder ships it (what a context made without the api's configuration uses).
DEFAULT_ENFORCER = Enforcer()


def allowed(ctx: RequestContext, rule: str, target: Target | None = None) -> bool:
    return ctx.policy.allowed(rule, ctx.caller, target)


def authorize(ctx: RequestContext, rule: str, target: Target | None = None) -> None:
    """Cinder's ``context.authorize``: 403 ``Policy doesn't allow <rule> ...`` unless it passes."""
    if not allowed(ctx, rule, target):
        raise policy_forbidden(rule)


def require_admin(ctx: RequestContext, rule: str) -> None:
    """The former name of :func:`authorize` (for rules that are ``rule:admin_api`` by default),
    kept for callers not moved yet: it checks the table's rule, not the admin role."""
    authorize(ctx, rule)
