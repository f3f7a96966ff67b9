"""Cinder's CapacityFilter: a pool passes if it has room for the volume, by Cinder's capacity
factors (``services.scheduler.capacity``). In Cinder's order:

1. a size of 0 (a manage request) passes;
2. an unbounded free capacity (:data:`~services.scheduler.capacity.INFINITE`/``UNKNOWN``)
   passes: the retry takes care of a backend that was wrong;
3. an unbounded total passes only without a reserve (the reserve cannot be computed);
4. a total of 0 or less fails;
5. a thin request (the type does not say ``provisioning:type=thick``) on a pool with thin
   provisioning support and a ratio of at least 1 fails if
   ``(provisioned + size) / total_available`` exceeds the pool's
   ``max_over_subscription_ratio``, else passes if the virtual free capacity takes the size;
   with a ratio below 1 it fails;
6. otherwise (thick) it passes if the virtual free capacity (reported free, less the reserve
   and what is provisioned) takes the size.

The reasons are Cinder's log messages. Where Cinder raises (a thin pool whose reserve is its
whole total: a division by zero), the pool fails instead.

Not here: Cinder's ``vol_exists_on`` (a retype passes on the volume's own backend) and
``new_size`` (an extend asks for the difference); neither goes through this scheduler, and a
reported free capacity of ``None`` (fails in Cinder) is not representable.
"""

from __future__ import annotations

from services.scheduler.backend_state import PoolState
from services.scheduler.capacity import calculate_capacity_factors, cinder_capacity, is_unbounded
from services.scheduler.filters.base import FilterRequest, PoolFilter

__all__ = ["CAPACITY_FILTER", "capacity_check"]


def capacity_check(pool: PoolState, request: FilterRequest) -> str | None:
    requested = request.size_gb
    if requested == 0:
        return None
    host = pool.pool_id
    free, total = pool.free_capacity_gb, pool.total_capacity_gb
    if is_unbounded(free):
        return None
    if is_unbounded(total):
        if pool.reserved_percentage == 0:
            return None
        return (
            f"Cannot calculate GB of reserved space ({pool.reserved_percentage}%) with "
            f"backend's reported total capacity '{cinder_capacity(total)}'"
        )
    if total <= 0:
        return (
            f"Insufficient free space for volume creation. Total capacity is {total:.2f} "
            f"on host {host}."
        )
    thin = request.thin
    thin_support = pool.thin_provisioning_support
    ratio = pool.max_over_subscription_ratio
    factors = calculate_capacity_factors(
        total=total,
        free=free,
        provisioned=pool.provisioned_capacity_gb,
        thin_support=thin_support,
        max_over_subscription_ratio=ratio if thin_support else 1.0,
        reserved_percentage=pool.reserved_percentage,
        thin=thin,
    )
    available = factors.virtual_free_capacity
    if thin and thin_support and ratio >= 1:
        total_available = factors.total_available_capacity
        if not total_available:
            return (
                f"Insufficient free space for thin provisioning. The total available "
                f"capacity is 0 on host {host}."
            )
        provisioned_ratio = (pool.provisioned_capacity_gb + requested) / total_available
        if provisioned_ratio > ratio:
            return (
                "Insufficient free space for thin provisioning. The ratio of provisioned "
                f"capacity over total capacity {provisioned_ratio:.2f} has exceeded the "
                f"maximum over subscription ratio {ratio:.2f} on host {host}."
            )
        if available < requested:
            return (
                f"Insufficient free virtual space ({available}GB) to accommodate thin "
                f"provisioned {requested}GB volume on host {host}."
            )
        return None
    if thin and thin_support:
        return (
            f"Filtering out host {host} with an invalid maximum over subscription ratio of "
            f"{ratio:.2f}. The ratio should be a minimum of 1.0."
        )
    if available < requested:
        return (
            f"Insufficient free space for volume creation on host {host} "
            f"(requested / avail): {requested}/{available}"
        )
    return None


CAPACITY_FILTER = PoolFilter("CapacityFilter", capacity_check)
