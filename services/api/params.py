"""Small pieces of Cinder's request handling the api's resources share: boolean query
parameters and the policy refusal."""

from __future__ import annotations

from cindermesh.errors import Forbidden, InvalidInput

__all__ = ["is_true", "parse_bool_param", "policy_forbidden", "policy_message", "strict_bool"]

TRUE_STRINGS = frozenset({"1", "t", "true", "on", "y", "yes"})
FALSE_STRINGS = frozenset({"0", "f", "false", "off", "n", "no"})


def is_true(value: str) -> bool:
    """Lenient: true for Cinder's true strings, false for anything else."""
    return value.strip().lower() in TRUE_STRINGS


def strict_bool(name: str, value: str) -> bool:
    """Exactly one of Cinder's boolean strings (any case), else 400."""
    lowered = value.lower()
    if lowered in TRUE_STRINGS:
        return True
    if lowered in FALSE_STRINGS:
        return False
    raise InvalidInput(f"Value '{value}' for '{name}' is not a boolean.")


def parse_bool_param(name: str, value: str) -> bool:
    """A strict boolean query parameter; empty (not given) is false, whitespace is ignored."""
    return strict_bool(name, value.strip()) if value else False


def policy_message(rule: str) -> str:
    return f"Policy doesn't allow {rule} to be performed."


def policy_forbidden(rule: str) -> Forbidden:
    return Forbidden(policy_message(rule))
