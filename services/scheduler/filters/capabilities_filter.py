"""Cinder's CapabilitiesFilter: a pool passes if its reported capabilities satisfy every extra
spec of the volume type that applies to them.

* A key without a scope (``volume_backend_name``) or in the ``capabilities:`` scope
  (``capabilities:volume_backend_name``) applies; a key in any other scope
  (``provisioning:type``, ``vendor:...``, ``RESKEY:...``) is left to others.
* After the scope, every further ``:`` goes one level down a nested capability:
  ``capabilities:a:b`` is ``capabilities['a']['b']``. A key that is not reported, at any
  level, fails the pool.
* The requirement is matched by ``extra_specs_ops.match``; a capability reported as a list
  passes if any of its items matches.

``volume_backend_name`` routing is this filter on the ``volume_backend_name`` capability.
The reasons are Cinder's log messages. Cinder's check that a backend which reports
``online_extend_support: False`` does not extend an attached volume is not here (extends do
not go through this scheduler).
"""

from __future__ import annotations

from collections.abc import Mapping

from services.scheduler.backend_state import PoolState
from services.scheduler.extra_specs_ops import match
from services.scheduler.filters.base import FilterRequest, PoolFilter

__all__ = ["CAPABILITIES_FILTER", "capabilities_check", "satisfies_extra_specs"]

_SCOPE = "capabilities"


def _lookup(capabilities: Mapping[str, object], path: list[str]) -> tuple[bool, object, str]:
    """(found, value, the key that was missing)."""
    value: object = capabilities
    for key in path:
        if not isinstance(value, Mapping) or key not in value:
            return False, None, key
        value = value[key]
    return True, value, ""


def satisfies_extra_specs(
    capabilities: Mapping[str, object], extra_specs: Mapping[str, str | None]
) -> str | None:
    """None if ``capabilities`` satisfy every applicable spec, else why not (the first)."""
    for key, requirement in extra_specs.items():
        scope = key.split(":")
        if len(scope) > 1 and scope[0] != _SCOPE:
            continue
        if scope[0] == _SCOPE:
            del scope[0]
        found, value, missing = _lookup(capabilities, scope)
        if not found:
            return f"Backend doesn't provide capability '{missing}'"
        values = value if isinstance(value, list) else [value]
        if not any(match(v, requirement) for v in values):
            return (
                f'Volume type extra spec requirement "{key}={requirement}" does not match '
                f'reported capability "{value}"'
            )
    return None


def capabilities_check(pool: PoolState, request: FilterRequest) -> str | None:
    return satisfies_extra_specs(pool.capabilities, request.extra_specs)


CAPABILITIES_FILTER = PoolFilter("CapabilitiesFilter", capabilities_check)
