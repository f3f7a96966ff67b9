"""Cinder's IgnoreAttemptedHostsFilter: a pool passes if no earlier attempt to place this
volume chose it (``retry['backends']``, pool ids ``host@backend#pool``).

Cinder registers the same class under the entry point ``RetryFilter`` (Oslo's old name); it is
configured by its class name. Both names are accepted here (:data:`RETRY_FILTER`).
"""

from __future__ import annotations

from services.scheduler.backend_state import PoolState
from services.scheduler.filters.base import FilterRequest, PoolFilter

__all__ = ["IGNORE_ATTEMPTED_HOSTS_FILTER", "RETRY_FILTER", "ignore_attempted_hosts_check"]


def ignore_attempted_hosts_check(pool: PoolState, request: FilterRequest) -> str | None:
    if pool.pool_id not in request.tried_hosts:
        return None
    return f"Backend {pool.pool_id} fails.  Previously tried backends: {list(request.tried_hosts)}"


IGNORE_ATTEMPTED_HOSTS_FILTER = PoolFilter(
    "IgnoreAttemptedHostsFilter", ignore_attempted_hosts_check
)
RETRY_FILTER = PoolFilter("RetryFilter", ignore_attempted_hosts_check)
