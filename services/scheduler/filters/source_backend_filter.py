"""SourceBackendFilter (ours): a volume made from a snapshot or from another volume is placed
only on the backend that holds its source.

Cinder drops the other backends after weighing (``resource_backend``); here a filter does it,
first, so that it says so in its span and reason as the others do. A source named at pool
level (``host@backend#pool``) takes that pool only; at backend level, any of its pools.
"""

from __future__ import annotations

from services.scheduler.backend_state import PoolState
from services.scheduler.filters.base import FilterRequest, PoolFilter

__all__ = ["SOURCE_BACKEND_FILTER", "source_backend_check"]


def source_backend_check(pool: PoolState, request: FilterRequest) -> str | None:
    wanted = request.source_backend
    if not wanted or wanted in (pool.backend, pool.pool_id):
        return None
    return (
        f"Backend {pool.pool_id} does not hold the source of volume {request.volume_id} "
        f"(it is on {wanted})"
    )


SOURCE_BACKEND_FILTER = PoolFilter("SourceBackendFilter", source_backend_check)
