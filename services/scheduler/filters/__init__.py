"""Cinder's scheduler filters as pure checks over a pool state and a request.

A filter is a :class:`PoolFilter`: its Cinder class name and a check that answers None when
the pool passes, else the reason it was filtered out (Cinder's log message, where Cinder logs
one). One module per filter, named as Cinder's:

========================== =====================================================
AvailabilityZoneFilter     ``availability_zone_filter``
CapacityFilter             ``capacity_filter``
CapabilitiesFilter         ``capabilities_filter`` (operators: ``extra_specs_ops``)
SameBackendFilter          ``affinity_filter``
DifferentBackendFilter     ``affinity_filter``
JsonFilter                 ``json_filter``
IgnoreAttemptedHostsFilter ``ignore_attempted_hosts_filter`` (also ``RetryFilter``)
SourceBackendFilter        ``source_backend_filter`` (ours)
========================== =====================================================

``scheduler_default_filters`` = AvailabilityZoneFilter, CapacityFilter, CapabilitiesFilter, in
that order (:data:`DEFAULT_FILTERS`); ``services.scheduler.registry`` builds the configured
list by name. A volume made from a snapshot or from another volume runs
:data:`SOURCE_BACKEND_FILTER` first (:func:`filters_for`).

Not here: Cinder's DriverFilter (a driver's ``filter_function``) and InstanceLocalityFilter
(asks Nova).
"""

from __future__ import annotations

from services.scheduler.extra_specs_ops import match as match_extra_spec
from services.scheduler.filters.affinity_filter import (
    DIFFERENT_BACKEND_FILTER,
    SAME_BACKEND_FILTER,
    different_backend_check,
    host_matches,
    same_backend_check,
)
from services.scheduler.filters.availability_zone_filter import (
    AVAILABILITY_ZONE_FILTER,
    availability_zone_check,
)
from services.scheduler.filters.base import Check, FilterRequest, PoolFilter, passes
from services.scheduler.filters.capabilities_filter import (
    CAPABILITIES_FILTER,
    capabilities_check,
    satisfies_extra_specs,
)
from services.scheduler.filters.capacity_filter import CAPACITY_FILTER, capacity_check
from services.scheduler.filters.ignore_attempted_hosts_filter import (
    IGNORE_ATTEMPTED_HOSTS_FILTER,
    RETRY_FILTER,
    ignore_attempted_hosts_check,
)
from services.scheduler.filters.json_filter import (
    JSON_FILTER,
    QueryError,
    evaluate_query,
    json_check,
    pool_namespace,
)
from services.scheduler.filters.source_backend_filter import (
    SOURCE_BACKEND_FILTER,
    source_backend_check,
)

__all__ = [
    "AVAILABILITY_ZONE_FILTER",
    "CAPABILITIES_FILTER",
    "CAPACITY_FILTER",
    "DEFAULT_FILTERS",
    "DIFFERENT_BACKEND_FILTER",
    "IGNORE_ATTEMPTED_HOSTS_FILTER",
    "JSON_FILTER",
    "RETRY_FILTER",
    "SAME_BACKEND_FILTER",
    "SOURCE_BACKEND_FILTER",
    "Check",
    "FilterRequest",
    "PoolFilter",
    "QueryError",
    "availability_zone_check",
    "capabilities_check",
    "capacity_check",
    "different_backend_check",
    "evaluate_query",
    "filters_for",
    "host_matches",
    "ignore_attempted_hosts_check",
    "json_check",
    "match_extra_spec",
    "passes",
    "pool_namespace",
    "same_backend_check",
    "satisfies_extra_specs",
    "source_backend_check",
]

#: Cinder's ``scheduler_default_filters``, in order.
DEFAULT_FILTERS: tuple[PoolFilter, ...] = (
    AVAILABILITY_ZONE_FILTER,
    CAPACITY_FILTER,
    CAPABILITIES_FILTER,
)


def filters_for(request: FilterRequest, filters: tuple[PoolFilter, ...]) -> tuple[PoolFilter, ...]:
    """The filters a request runs: ``filters``, after SourceBackendFilter if it has a source."""
    return (SOURCE_BACKEND_FILTER, *filters) if request.source_backend else filters
