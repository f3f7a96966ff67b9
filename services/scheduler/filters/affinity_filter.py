"""Cinder's SameBackendFilter and DifferentBackendFilter (``affinity_filter.py``): the
``same_host`` / ``different_host`` scheduler hints, each a list of volume ids.

Cinder looks the hinted volumes up for every pool, by ``host`` filtered as its database's
``_filter_host`` filters (:func:`host_matches`) on the pool state's ``host``, which for a
pool is ``host@backend#pool``: so the match is at pool level, exact (a volume on another pool
of the same backend, or with a legacy host without a pool, is not "on" this pool).

* SameBackendFilter: without the hint (or with an empty list: the scheduler passes None for
  it) every pool passes; otherwise a pool passes if one of the hinted volumes is on it (none
  of them found: no pool passes).
* DifferentBackendFilter: without the hint every pool passes; otherwise a pool passes if none
  of the hinted volumes is on it.

Ours: the scheduler resolves the hint once per request (:class:`FilterRequest` ``same_host``
and ``different_host``: the hosts of the hinted volumes that exist, not deleted, in the
request's project as Cinder's ``volume_api.get_all`` sees them), so the checks are pure.
Cinder's refusal of a hint that is not a volume id is the api's schema here, as it is in
Cinder's v3 api. Clusters (Cinder's ``cluster_name`` matching) are not modelled.
"""

from __future__ import annotations

from services.scheduler.backend_state import PoolState
from services.scheduler.filters.base import FilterRequest, PoolFilter

__all__ = [
    "DIFFERENT_BACKEND_FILTER",
    "SAME_BACKEND_FILTER",
    "different_backend_check",
    "host_matches",
    "same_backend_check",
]


def host_matches(volume_host: str | None, value: str) -> bool:
    """Cinder's ``_filter_host(Volume.host, value)``: the level is the value's: with a ``#``
    (pool) the host must equal it; with an ``@`` (backend) it may also be ``value#...``; a bare
    host also takes ``value@...``. A volume without a host matches nothing."""
    if volume_host is None:
        return False
    if volume_host == value:
        return True
    if "#" in value:
        return False
    if volume_host.startswith(value + "#"):
        return True
    return "@" not in value and volume_host.startswith(value + "@")


def _on_pool(hosts: tuple[str, ...], pool: PoolState) -> bool:
    return any(host_matches(host, pool.pool_id) for host in hosts)


def same_backend_check(pool: PoolState, request: FilterRequest) -> str | None:
    hosts = request.same_host
    if hosts is None or _on_pool(hosts, pool):
        return None
    return f"Host {pool.pool_id} holds none of the volumes of the same_host hint"


def different_backend_check(pool: PoolState, request: FilterRequest) -> str | None:
    hosts = request.different_host
    if hosts is None or not _on_pool(hosts, pool):
        return None
    return f"Host {pool.pool_id} holds a volume of the different_host hint"


SAME_BACKEND_FILTER = PoolFilter("SameBackendFilter", same_backend_check)
DIFFERENT_BACKEND_FILTER = PoolFilter("DifferentBackendFilter", different_backend_check)
