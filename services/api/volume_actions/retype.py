"""Whether a volume can take a new type where it is: the pool's reported capabilities satisfy
the new type's extra specs (Cinder's ``find_retype_backend`` for the volume's own pool, by the
scheduler's CapabilitiesFilter rule, ``services.scheduler.filters.match_extra_spec``), and the
encryption does not change (Cinder's manager migrates a volume whose encryption changes).

Otherwise a retype with ``migration_policy=on-demand`` migrates the volume to the pool
:func:`destination` picks among the scheduler's live pools (``Scheduler.GetPools``): one of
another backend whose capabilities satisfy the new type, with room for the volume and not the
same storage as the source (``location_info``), the most free capacity first (Cinder's
CapabilitiesFilter, CapacityFilter and CapacityWeigher, over the pools the scheduler reports).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from google.protobuf.json_format import MessageToDict

from cindermesh_pb.scheduler.v1 import scheduler_pb2
from services.scheduler.backend_state import CapabilityValue
from services.scheduler.filters import match_extra_spec

__all__ = ["destination", "pool_capabilities", "satisfies"]


def pool_capabilities(
    pools: Sequence[scheduler_pb2.PoolInfo], host: str
) -> Mapping[str, CapabilityValue] | None:
    """The reported capabilities of the pool ``host`` (host@backend#pool); None if it does not
    report (its backend is down, or it is not the scheduler's)."""
    for pool in pools:
        if pool.name == host:
            found: dict[str, CapabilityValue] = MessageToDict(pool.capabilities)
            return found
    return None


def satisfies(capabilities: Mapping[str, CapabilityValue], extra_specs: Mapping[str, str]) -> bool:
    """CapabilitiesFilter: every extra spec that applies (unscoped or ``capabilities:``) is
    reported and matched."""
    for key, requirement in extra_specs.items():
        scope = key.split(":")
        if len(scope) > 1 and scope[0] != "capabilities":
            continue
        name = ":".join(scope[1:] if scope[0] == "capabilities" else scope)
        value = capabilities.get(name)
        if value is None or not match_extra_spec(value, requirement):
            return False
    return True


def _free_gb(capabilities: Mapping[str, CapabilityValue]) -> float:
    """The pool's free capacity (``infinite`` and ``unknown`` count as room, as Cinder's
    CapacityFilter lets them pass)."""
    free = capabilities.get("free_capacity_gb")
    if isinstance(free, bool) or free is None:
        return 0.0
    if isinstance(free, int | float):
        return float(free)
    return float("inf") if str(free).lower() in ("infinite", "unknown") else 0.0


def destination(
    pools: Sequence[scheduler_pb2.PoolInfo],
    host: str,
    extra_specs: Mapping[str, str],
    size_gb: int,
) -> str | None:
    """The pool (host@backend#pool) a volume of ``size_gb`` on ``host`` migrates to for a
    type of ``extra_specs``; None if no pool of another backend will do (Cinder's
    NoValidBackend)."""
    backend = host.partition("#")[0]
    source = pool_capabilities(pools, host) or {}
    source_location = source.get("location_info")
    best: tuple[float, str] | None = None
    for pool in pools:
        if pool.name.partition("#")[0] == backend:
            continue
        capabilities: dict[str, CapabilityValue] = MessageToDict(pool.capabilities)
        if capabilities.get("backend_state") == "down":
            continue
        location = capabilities.get("location_info")
        if source_location and location == source_location:
            continue  # the same storage under another name: a copy would be onto itself
        if not satisfies(capabilities, extra_specs):
            continue
        free = _free_gb(capabilities)
        if free < size_gb:
            continue
        if best is None or (free, pool.name) > best:
            best = (free, pool.name)
    return best[1] if best is not None else None
