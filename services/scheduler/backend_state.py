"""Pool states kept from the volume managers' capability streams (Cinder's ``HostManager``).

Reproduced from Cinder:

* one state per pool, ``host@backend#pool``; a backend's report replaces its pools and drops
  the pools it no longer lists ("Removing non-active pool");
* a report older than the last one accepted from its backend is ignored;
* after the scheduler consumed capacity from a pool (:func:`consume_from_volume`), the pool's
  numbers are only overwritten by a report taken at or after that moment; the capabilities
  (what the filters and ``get_pools`` read) are replaced by every report;
* the over-subscription ratio is 1.0 for a pool without thin provisioning or with an unbounded
  capacity (``calculate_max_over_subscription_ratio``);
* provisioned capacity falls back to allocated capacity when a backend does not report it.

Ours: a backend is known for as long as its stream is open (instead of the services table's
heartbeat); when the stream that reported it ends, its pools are removed.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from services.scheduler.capacity import is_unbounded

__all__ = [
    "DEFAULT_MAX_OVER_SUBSCRIPTION_RATIO",
    "BackendReport",
    "BackendStates",
    "CapabilityValue",
    "PoolReport",
    "PoolState",
    "PoolView",
    "consume_from_volume",
    "pool_state_from_report",
]

log = logging.getLogger(__name__)

#: A capability as the filters see it: Cinder's capability dicts mix strings, numbers, bools.
CapabilityValue = str | int | float | bool

#: Cinder's ``max_over_subscription_ratio`` default, used when a pool reports none (0).
DEFAULT_MAX_OVER_SUBSCRIPTION_RATIO = 20.0


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class PoolReport:
    """One pool of a capability report."""

    pool_name: str
    total_capacity_gb: float
    free_capacity_gb: float
    allocated_capacity_gb: float
    #: 0 means not reported: the allocated capacity stands in for it.
    provisioned_capacity_gb: float
    thin_provisioning_support: bool
    thick_provisioning_support: bool
    #: 0 means not reported: :data:`DEFAULT_MAX_OVER_SUBSCRIPTION_RATIO`.
    max_over_subscription_ratio: float
    reserved_percentage: int
    #: Further capabilities for volume-type extra specs.
    extra: Mapping[str, str]


@dataclass(frozen=True)
class BackendReport:
    """One capability report of a backend (``host@backend``) and its pools."""

    backend: str
    volume_backend_name: str
    availability_zone: str
    #: gRPC address of the backend's VolumeManager.
    address: str
    vendor_name: str
    driver_version: str
    storage_protocol: str
    pools: tuple[PoolReport, ...]
    #: When the numbers were taken; ``None``: when the scheduler received them.
    timestamp: dt.datetime | None = None


@dataclass(frozen=True)
class PoolState:
    """What the scheduler believes of one pool: the last accepted report, less what it has
    consumed since (Cinder's ``PoolState``)."""

    backend: str
    pool_name: str
    availability_zone: str
    address: str
    total_capacity_gb: float
    free_capacity_gb: float
    allocated_capacity_gb: float
    provisioned_capacity_gb: float
    thin_provisioning_support: bool
    thick_provisioning_support: bool
    #: Effective ratio (1.0 without thin provisioning support).
    max_over_subscription_ratio: float
    reserved_percentage: int
    #: The capabilities as reported (what CapabilitiesFilter matches and get_pools shows).
    capabilities: Mapping[str, CapabilityValue]
    #: Time of the numbers: the report's, or of the last consumption.
    updated: dt.datetime

    @property
    def pool_id(self) -> str:
        """``host@backend#pool``."""
        return f"{self.backend}#{self.pool_name}"


@dataclass(frozen=True)
class PoolView:
    """One entry of ``GET /scheduler-stats/get_pools``: the name and reported capabilities."""

    name: str
    capabilities: Mapping[str, CapabilityValue]


def _effective_ratio(pool: PoolReport) -> float:
    if not pool.thin_provisioning_support:
        return 1.0
    if is_unbounded(pool.total_capacity_gb) or is_unbounded(pool.free_capacity_gb):
        return 1.0
    return pool.max_over_subscription_ratio or DEFAULT_MAX_OVER_SUBSCRIPTION_RATIO


def _capabilities(
    report: BackendReport, pool: PoolReport, timestamp: dt.datetime
) -> dict[str, CapabilityValue]:
    capabilities: dict[str, CapabilityValue] = dict(pool.extra)
    capabilities.update(
        volume_backend_name=report.volume_backend_name,
        vendor_name=report.vendor_name,
        driver_version=report.driver_version,
        storage_protocol=report.storage_protocol,
        pool_name=pool.pool_name,
        total_capacity_gb=pool.total_capacity_gb,
        free_capacity_gb=pool.free_capacity_gb,
        allocated_capacity_gb=pool.allocated_capacity_gb,
        reserved_percentage=pool.reserved_percentage,
        thin_provisioning_support=pool.thin_provisioning_support,
        thick_provisioning_support=pool.thick_provisioning_support,
        max_over_subscription_ratio=pool.max_over_subscription_ratio
        or DEFAULT_MAX_OVER_SUBSCRIPTION_RATIO,
        timestamp=timestamp.isoformat(),
    )
    if pool.provisioned_capacity_gb:
        capabilities["provisioned_capacity_gb"] = pool.provisioned_capacity_gb
    return capabilities


def pool_state_from_report(
    report: BackendReport,
    pool: PoolReport,
    timestamp: dt.datetime,
    previous: PoolState | None = None,
) -> PoolState:
    """The pool's new state; keeps ``previous``'s numbers if it consumed after ``timestamp``."""
    capabilities = _capabilities(report, pool, timestamp)
    if previous is not None and previous.updated > timestamp:
        return dataclasses.replace(
            previous,
            availability_zone=report.availability_zone,
            address=report.address,
            capabilities=capabilities,
        )
    return PoolState(
        backend=report.backend,
        pool_name=pool.pool_name,
        availability_zone=report.availability_zone,
        address=report.address,
        total_capacity_gb=pool.total_capacity_gb,
        free_capacity_gb=pool.free_capacity_gb,
        allocated_capacity_gb=pool.allocated_capacity_gb,
        provisioned_capacity_gb=pool.provisioned_capacity_gb or pool.allocated_capacity_gb,
        thin_provisioning_support=pool.thin_provisioning_support,
        thick_provisioning_support=pool.thick_provisioning_support,
        max_over_subscription_ratio=_effective_ratio(pool),
        reserved_percentage=pool.reserved_percentage,
        capabilities=capabilities,
        updated=timestamp,
    )


def consume_from_volume(pool: PoolState, size_gb: float, now: dt.datetime | None) -> PoolState:
    """Cinder's ``consume_from_volume``: allocated and provisioned grow by the size, free
    shrinks by it (it may go negative; an unbounded free stays as it is). ``now`` (None on
    a reschedule's give-back, which uses a negative size) becomes the pool's ``updated``."""
    free = pool.free_capacity_gb
    return dataclasses.replace(
        pool,
        allocated_capacity_gb=pool.allocated_capacity_gb + size_gb,
        provisioned_capacity_gb=pool.provisioned_capacity_gb + size_gb,
        free_capacity_gb=free if is_unbounded(free) else free - size_gb,
        updated=pool.updated if now is None else now,
    )


@dataclass
class _Backend:
    stream: object
    timestamp: dt.datetime
    pool_ids: frozenset[str]


class BackendStates:
    """The pools of every backend with an open capability stream, by ``host@backend#pool``.

    All methods are synchronous: choosing a pool and consuming from it happen without an
    ``await`` in between, so concurrent schedules in one process never pick from stale numbers.
    """

    def __init__(self, clock: Callable[[], dt.datetime] = _utcnow) -> None:
        self._clock = clock
        self._pools: dict[str, PoolState] = {}
        self._backends: dict[str, _Backend] = {}
        #: Set once the first report arrived.
        self.first_report = asyncio.Event()

    def update(self, report: BackendReport, stream: object) -> bool:
        """Takes a report received on ``stream``; False if it was older than the last one."""
        timestamp = report.timestamp or self._clock()
        known = self._backends.get(report.backend)
        if known is not None and known.timestamp > timestamp:
            log.debug("Ignoring old capability report from %s", report.backend)
            return False
        pool_ids: set[str] = set()
        for pool in report.pools:
            pool_id = f"{report.backend}#{pool.pool_name}"
            self._pools[pool_id] = pool_state_from_report(
                report, pool, timestamp, self._pools.get(pool_id)
            )
            pool_ids.add(pool_id)
        for gone in (known.pool_ids if known else frozenset()) - pool_ids:
            log.info("Removing non-active pool %s", gone)
            self._pools.pop(gone, None)
        self._backends[report.backend] = _Backend(stream, timestamp, frozenset(pool_ids))
        self.first_report.set()
        return True

    def remove(self, backend: str, stream: object) -> None:
        """Forgets ``backend`` if ``stream`` is the one that reported it last (a manager that
        reconnected before its old stream ended keeps its pools)."""
        known = self._backends.get(backend)
        if known is None or known.stream is not stream:
            return
        log.info("Removing non-active backend %s", backend)
        del self._backends[backend]
        for pool_id in known.pool_ids:
            self._pools.pop(pool_id, None)

    def pools(self) -> list[PoolState]:
        """Every pool, in the order their backends first reported."""
        return list(self._pools.values())

    def pool(self, pool_id: str) -> PoolState | None:
        return self._pools.get(pool_id)

    def consume(self, pool_id: str, size_gb: float, *, update_time: bool = True) -> bool:
        """Consumes ``size_gb`` (negative: gives it back) from a pool; False if it is gone."""
        pool = self._pools.get(pool_id)
        if pool is None:
            return False
        self._pools[pool_id] = consume_from_volume(
            pool, size_gb, self._clock() if update_time else None
        )
        log.debug("Consumed %s GB from backend: %s", size_gb, self._pools[pool_id])
        return True

    def pool_views(self) -> list[PoolView]:
        """The pools for ``get_pools``, with the reported (not the consumed) numbers."""
        return [PoolView(p.pool_id, dict(p.capabilities)) for p in self._pools.values()]
