"""Cinder's AvailabilityZoneFilter: a pool passes if its backend's zone is one of the
requested zones (``request_spec['availability_zones']``), else the requested zone
(``resource_properties['availability_zone']``); any pool passes when neither is asked.

The backend's zone is its service's ``availability_zone``: the one its volume manager reports.
Cinder's filter says nothing when it filters a pool out; the reason here is ours.
"""

from __future__ import annotations

from services.scheduler.backend_state import PoolState
from services.scheduler.filters.base import FilterRequest, PoolFilter

__all__ = ["AVAILABILITY_ZONE_FILTER", "availability_zone_check"]


def availability_zone_check(pool: PoolState, request: FilterRequest) -> str | None:
    if request.availability_zones:
        if pool.availability_zone in request.availability_zones:
            return None
        wanted = ", ".join(request.availability_zones)
        return (
            f"Availability zone {pool.availability_zone!r} of host {pool.pool_id} is not one "
            f"of the requested zones {wanted}"
        )
    if not request.availability_zone or request.availability_zone == pool.availability_zone:
        return None
    return (
        f"Availability zone {pool.availability_zone!r} of host {pool.pool_id} is not the "
        f"requested zone {request.availability_zone!r}"
    )


AVAILABILITY_ZONE_FILTER = PoolFilter("AvailabilityZoneFilter", availability_zone_check)
