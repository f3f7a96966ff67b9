"""Filters, weighers and the weight handler by the names Cinder configures them with
(``scheduler_default_filters``, ``scheduler_default_weighers``, ``scheduler_weight_handler``).

Cinder looks each name up among the loaded classes by class name and refuses an unknown one
(``SchedulerHostFilterNotFound``: "Scheduler Host Filter X could not be found.", and the
weigher's likewise); here the refusal is a ``ValueError`` with Cinder's words and the valid
names. A name may appear twice (the filter runs twice, as in Cinder).

Deviations: names only, never import paths (Cinder's ``scheduler_weight_handler`` is a dotted
class path; here it is the class name); ``RetryFilter`` is accepted beside
``IgnoreAttemptedHostsFilter`` (Cinder's entry point of that name loads the same class);
SourceBackendFilter is not configurable (the scheduler runs it for a volume with a source,
``filters.filters_for``). The multipliers are bound when the weighers are built, not read at
each weighing.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence

from cindermesh.settings import SchedulerSettings
from services.scheduler.filters import (
    AVAILABILITY_ZONE_FILTER,
    CAPABILITIES_FILTER,
    CAPACITY_FILTER,
    DIFFERENT_BACKEND_FILTER,
    IGNORE_ATTEMPTED_HOSTS_FILTER,
    JSON_FILTER,
    RETRY_FILTER,
    SAME_BACKEND_FILTER,
    PoolFilter,
)
from services.scheduler.weighers import (
    ORDERED,
    STOCHASTIC,
    Weigher,
    allocated_capacity_weigher,
    capacity_weigher,
    volume_number_weigher,
)

__all__ = [
    "FilterName",
    "WeigherName",
    "WeightHandlerName",
    "filters_by_name",
    "from_settings",
    "weighers_by_name",
    "weight_handler_by_name",
]


class FilterName(enum.StrEnum):
    AVAILABILITY_ZONE = "AvailabilityZoneFilter"
    CAPACITY = "CapacityFilter"
    CAPABILITIES = "CapabilitiesFilter"
    SAME_BACKEND = "SameBackendFilter"
    DIFFERENT_BACKEND = "DifferentBackendFilter"
    JSON = "JsonFilter"
    IGNORE_ATTEMPTED_HOSTS = "IgnoreAttemptedHostsFilter"
    RETRY = "RetryFilter"


class WeigherName(enum.StrEnum):
    CAPACITY = "CapacityWeigher"
    ALLOCATED_CAPACITY = "AllocatedCapacityWeigher"
    VOLUME_NUMBER = "VolumeNumberWeigher"


class WeightHandlerName(enum.StrEnum):
    ORDERED = ORDERED
    STOCHASTIC = STOCHASTIC


_FILTERS: Mapping[FilterName, PoolFilter] = {
    FilterName.AVAILABILITY_ZONE: AVAILABILITY_ZONE_FILTER,
    FilterName.CAPACITY: CAPACITY_FILTER,
    FilterName.CAPABILITIES: CAPABILITIES_FILTER,
    FilterName.SAME_BACKEND: SAME_BACKEND_FILTER,
    FilterName.DIFFERENT_BACKEND: DIFFERENT_BACKEND_FILTER,
    FilterName.JSON: JSON_FILTER,
    FilterName.IGNORE_ATTEMPTED_HOSTS: IGNORE_ATTEMPTED_HOSTS_FILTER,
    FilterName.RETRY: RETRY_FILTER,
}


def _unknown(kind: str, bad: Sequence[str], valid: type[enum.StrEnum]) -> ValueError:
    return ValueError(
        f"Scheduler Host {kind} {', '.join(bad)} could not be found. "
        f"Valid: {', '.join(member.value for member in valid)}"
    )


def filters_by_name(names: Sequence[str]) -> tuple[PoolFilter, ...]:
    """The filters named, in order; ValueError naming every unknown name."""
    known = {member.value for member in FilterName}
    bad = [name for name in names if name not in known]
    if bad:
        raise _unknown("Filter", bad, FilterName)
    return tuple(_FILTERS[FilterName(name)] for name in names)


def weighers_by_name(
    names: Sequence[str],
    *,
    capacity_weight_multiplier: float = 1.0,
    allocated_capacity_weight_multiplier: float = -1.0,
    volume_number_multiplier: float = -1.0,
) -> tuple[Weigher, ...]:
    """The weighers named, in order, with their multipliers (Cinder's defaults unless
    given); ValueError naming every unknown name."""
    known = {member.value for member in WeigherName}
    bad = [name for name in names if name not in known]
    if bad:
        raise _unknown("Weigher", bad, WeigherName)
    built = {
        WeigherName.CAPACITY: capacity_weigher(capacity_weight_multiplier),
        WeigherName.ALLOCATED_CAPACITY: allocated_capacity_weigher(
            allocated_capacity_weight_multiplier
        ),
        WeigherName.VOLUME_NUMBER: volume_number_weigher(volume_number_multiplier),
    }
    return tuple(built[WeigherName(name)] for name in names)


def weight_handler_by_name(name: str) -> WeightHandlerName:
    """The weight handler named; ValueError if unknown."""
    try:
        return WeightHandlerName(name)
    except ValueError:
        raise _unknown("Weight Handler", [name], WeightHandlerName) from None


def from_settings(
    s: SchedulerSettings,
) -> tuple[tuple[PoolFilter, ...], tuple[Weigher, ...], WeightHandlerName]:
    """The configured filters, weighers (with the configured multipliers) and weight
    handler; ValueError on any unknown name."""
    return (
        filters_by_name(s.scheduler_default_filters),
        weighers_by_name(
            s.scheduler_default_weighers,
            capacity_weight_multiplier=s.capacity_weight_multiplier,
            allocated_capacity_weight_multiplier=s.allocated_capacity_weight_multiplier,
            volume_number_multiplier=s.volume_number_multiplier,
        ),
        weight_handler_by_name(s.scheduler_weight_handler),
    )
