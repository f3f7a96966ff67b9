"""Cinder's default scheduler filters as pure yes/no checks over a pool state and a request.

``scheduler_default_filters`` = AvailabilityZoneFilter, CapacityFilter, CapabilitiesFilter, in
that order (:data:`DEFAULT_FILTERS`). A volume made from a snapshot or from another volume runs
:data:`SOURCE_BACKEND_FILTER` first: it is placed only on the backend that holds its source
(Cinder drops the other backends after weighing, ``resource_backend``; a filter says so in its
span and log line as the others do). The order of the checks inside each filter is Cinder's.
The log messages are Cinder's too, so an operator can map one to the other.

Where Cinder would raise (a zero available capacity on the thin path; a string operator or
``<in>`` applied to a number), the pool fails the filter instead.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from services.scheduler.backend_state import CapabilityValue, PoolState
from services.scheduler.capacity import calculate_capacity_factors, is_unbounded

__all__ = [
    "DEFAULT_FILTERS",
    "SOURCE_BACKEND_FILTER",
    "FilterRequest",
    "PoolFilter",
    "availability_zone_filter",
    "capabilities_filter",
    "capacity_filter",
    "filters_for",
    "match_extra_spec",
    "source_backend_filter",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FilterRequest:
    """What the filters and weighers look at (Cinder's request_spec + filter_properties)."""

    volume_id: str
    size_gb: int
    #: Requested zone; empty: any.
    availability_zone: str = ""
    #: The volume type's extra specs.
    extra_specs: Mapping[str, str] = field(default_factory=dict)
    #: ``host@backend`` (or ``host@backend#pool``) that holds the source; empty: any.
    source_backend: str = ""

    @property
    def thin(self) -> bool:
        """Cinder provisions thin unless the type says ``provisioning:type=thick``."""
        return self.extra_specs.get("provisioning:type") != "thick"


@dataclass(frozen=True)
class PoolFilter:
    name: str
    passes: Callable[[PoolState, FilterRequest], bool]


def availability_zone_filter(pool: PoolState, request: FilterRequest) -> bool:
    """Passes pools in the requested zone; any pool if none was requested."""
    return not request.availability_zone or pool.availability_zone == request.availability_zone


def source_backend_filter(pool: PoolState, request: FilterRequest) -> bool:
    """Passes the pools of the backend that holds the volume's source; any without a source."""
    wanted = request.source_backend
    if not wanted or wanted in (pool.backend, pool.pool_id):
        return True
    log.debug(
        "Backend %s does not hold the source of volume %s (it is on %s)",
        pool.pool_id,
        request.volume_id,
        wanted,
    )
    return False


def _thin_fits(pool: PoolState, request: FilterRequest, virtual_free: float, total: float) -> bool:
    if not total:
        return False
    ratio = (pool.provisioned_capacity_gb + request.size_gb) / total
    if ratio > pool.max_over_subscription_ratio:
        log.warning(
            "Insufficient free space for thin provisioning. The ratio of provisioned capacity "
            "over total capacity %.2f has exceeded the maximum over subscription ratio %.2f on "
            "host %s.",
            ratio,
            pool.max_over_subscription_ratio,
            pool.pool_id,
        )
        return False
    if virtual_free < request.size_gb:
        log.warning(
            "Insufficient free virtual space (%sGB) to accommodate thin provisioned %sGB volume "
            "on host %s.",
            virtual_free,
            request.size_gb,
            pool.pool_id,
        )
        return False
    return True


def capacity_filter(pool: PoolState, request: FilterRequest) -> bool:
    """Passes pools with room for the volume, by Cinder's capacity factors."""
    requested = request.size_gb
    if requested == 0:
        return True
    free, total = pool.free_capacity_gb, pool.total_capacity_gb
    if is_unbounded(free):
        return True
    if is_unbounded(total):
        return pool.reserved_percentage == 0
    if total <= 0:
        log.warning(
            "Insufficient free space for volume creation. Total capacity is %s on host %s.",
            total,
            pool.pool_id,
        )
        return False
    thin = request.thin and pool.thin_provisioning_support
    ratio = pool.max_over_subscription_ratio if pool.thin_provisioning_support else 1.0
    factors = calculate_capacity_factors(
        total=total,
        free=free,
        provisioned=pool.provisioned_capacity_gb,
        thin_support=pool.thin_provisioning_support,
        max_over_subscription_ratio=ratio,
        reserved_percentage=pool.reserved_percentage,
        thin=request.thin,
    )
    virtual_free = factors.virtual_free_capacity
    if thin and pool.max_over_subscription_ratio >= 1:
        return _thin_fits(pool, request, virtual_free, factors.total_available_capacity)
    if thin:
        log.warning(
            "Filtering out host %s with an invalid maximum over subscription ratio of %s. "
            "The ratio should be a minimum of 1.0.",
            pool.pool_id,
            pool.max_over_subscription_ratio,
        )
        return False
    if virtual_free < requested:
        log.warning(
            "Insufficient free space for volume creation on host %s (requested / avail): %s/%s",
            pool.pool_id,
            requested,
            virtual_free,
        )
        return False
    return True


_TRUE_STRINGS = frozenset(("1", "t", "true", "on", "y", "yes"))


def _bool_from_string(value: CapabilityValue) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in _TRUE_STRINGS


def _as_float(value: CapabilityValue | str) -> float:
    return float(value)


_OPERATORS: dict[str, Callable[[CapabilityValue, str], bool]] = {
    "=": lambda v, a: _as_float(v) >= _as_float(a),
    "==": lambda v, a: _as_float(v) == _as_float(a),
    "!=": lambda v, a: _as_float(v) != _as_float(a),
    ">=": lambda v, a: _as_float(v) >= _as_float(a),
    "<=": lambda v, a: _as_float(v) <= _as_float(a),
    "<in>": lambda v, a: isinstance(v, str) and a in v,
    "<is>": lambda v, a: _bool_from_string(v) is _bool_from_string(a),
    "s==": lambda v, a: isinstance(v, str) and v == a,
    "s!=": lambda v, a: isinstance(v, str) and v != a,
    "s<": lambda v, a: isinstance(v, str) and v < a,
    "s<=": lambda v, a: isinstance(v, str) and v <= a,
    "s>": lambda v, a: isinstance(v, str) and v > a,
    "s>=": lambda v, a: isinstance(v, str) and v >= a,
}


def match_extra_spec(value: CapabilityValue | None, requirement: str) -> bool:
    """Cinder's ``extra_specs_ops.match``: without a known operator as first word the test is
    plain equality (so a boolean capability never equals the string ``"True"``); ``=`` means
    at least; only the first argument counts, except for ``<or> a <or> b``."""
    words = requirement.split()
    operator = words[0] if words else ""
    if operator != "<or>" and operator not in _OPERATORS:
        return value == requirement
    if value is None:
        return False
    if operator == "<or>":
        # Cinder compares every other word: "<or> a <or> b" -> a, b.
        return any(word == value for word in words[1::2])
    if len(words) < 2:
        return False
    try:
        return _OPERATORS[operator](value, words[1])
    except ValueError:
        return False


def _capability(pool: PoolState, key: str) -> tuple[bool, CapabilityValue | None]:
    """(applies, value): unscoped keys and ``capabilities:`` keys apply; ``a:b`` nesting is
    looked up as the flat key ``a:b``."""
    scope = key.split(":")
    if len(scope) > 1 and scope[0] != "capabilities":
        return False, None
    if scope[0] == "capabilities":
        scope = scope[1:]
    return True, pool.capabilities.get(":".join(scope))


def capabilities_filter(pool: PoolState, request: FilterRequest) -> bool:
    """Passes pools whose capabilities satisfy every applicable extra spec of the type."""
    for key, requirement in request.extra_specs.items():
        applies, value = _capability(pool, key)
        if not applies:
            continue
        if value is None:
            log.debug("Backend doesn't provide capability '%s'", key)
            return False
        if not match_extra_spec(value, requirement):
            log.debug(
                'Volume type extra spec requirement "%s=%s" does not match reported '
                'capability "%s"',
                key,
                requirement,
                value,
            )
            return False
    return True


#: Cinder's ``scheduler_default_filters``, in order.
DEFAULT_FILTERS: tuple[PoolFilter, ...] = (
    PoolFilter("AvailabilityZoneFilter", availability_zone_filter),
    PoolFilter("CapacityFilter", capacity_filter),
    PoolFilter("CapabilitiesFilter", capabilities_filter),
)


SOURCE_BACKEND_FILTER = PoolFilter("SourceBackendFilter", source_backend_filter)


def filters_for(request: FilterRequest, filters: tuple[PoolFilter, ...]) -> tuple[PoolFilter, ...]:
    """The filters a request runs: ``filters``, after SourceBackendFilter if it has a source."""
    return (SOURCE_BACKEND_FILTER, *filters) if request.source_backend else filters
