"""Pool states kept from the volume managers' capability reports (Cinder's ``HostManager``).

Every scheduler replica watches every volume manager (``backend_watch.py``) and feeds each
report in here. Reproduced from Cinder:

* one state per pool, ``host@backend#pool``; a backend's report replaces its pools and drops
  the pools it no longer lists ("Removing non-active pool");
* a backend is up while its last report is at most ``service_down_time`` seconds old
  (``service_is_up``); only the pools of backends that are up are candidates and are shown by
  ``get_pools`` (``_update_backend_state_map`` leaves the others out);
* the over-subscription ratio is 1.0 for a pool without thin provisioning or with an unbounded
  capacity, and is derived from the provisioned and used capacity when it is ``"auto"``
  (``calculate_max_over_subscription_ratio``);
* provisioned capacity falls back to allocated capacity when a backend does not report it.

Ours: no clock of another process is read. A report's order is its manager's incarnation and
sequence (a lower sequence of the same incarnation is stale; another incarnation replaces),
and its age is measured from its receipt on this process's monotonic clock. When the stream
that reported a backend ends, its pools are removed at once. What the schedulers have placed
since a report is not counted here: it is read from the database (``claims.py``).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from services.scheduler.capacity import AUTO, calculate_max_over_subscription_ratio

__all__ = [
    "DEFAULT_MAX_OVER_SUBSCRIPTION_RATIO",
    "BackendReport",
    "BackendStates",
    "CapabilityValue",
    "PoolReport",
    "PoolState",
    "PoolView",
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
    #: ``math.inf``/``math.nan``: Cinder's ``infinite``/``unknown``.
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
    #: The ratio was reported as Cinder's ``"auto"`` (``max_over_subscription_ratio`` unused).
    max_over_subscription_ratio_auto: bool = False


@dataclass(frozen=True)
class BackendReport:
    """One capability report of a backend (``host@backend``) and its pools."""

    backend: str
    volume_backend_name: str
    availability_zone: str
    #: gRPC address of the backend's VolumeManager (the one its report came from).
    address: str
    vendor_name: str
    driver_version: str
    storage_protocol: str
    pools: tuple[PoolReport, ...]
    #: The manager process that sent it, and its place among that process's reports.
    incarnation: str = ""
    sequence: int = 0


@dataclass(frozen=True)
class PoolState:
    """What the scheduler believes of one pool: its last report (Cinder's ``PoolState``)."""

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
    #: Effective ratio (1.0 without thin provisioning support; computed for ``"auto"``).
    max_over_subscription_ratio: float
    reserved_percentage: int
    #: The capabilities as reported (what CapabilitiesFilter matches and get_pools shows).
    capabilities: Mapping[str, CapabilityValue]
    #: Volumes on the pool (VolumeNumberWeigher); not reported: the database's count.
    volume_count: int = 0
    #: The reported ratio was Cinder's ``"auto"``.
    max_over_subscription_ratio_auto: bool = False

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
    """Cinder's ``calculate_max_over_subscription_ratio`` of the reported pool."""
    return calculate_max_over_subscription_ratio(
        thin_provisioning_support=pool.thin_provisioning_support,
        total_capacity_gb=pool.total_capacity_gb,
        free_capacity_gb=pool.free_capacity_gb,
        allocated_capacity_gb=pool.allocated_capacity_gb,
        provisioned_capacity_gb=pool.provisioned_capacity_gb or None,
        max_over_subscription_ratio=AUTO
        if pool.max_over_subscription_ratio_auto
        else pool.max_over_subscription_ratio,
        global_max_over_subscription_ratio=DEFAULT_MAX_OVER_SUBSCRIPTION_RATIO,
    )


def _capabilities(
    report: BackendReport, pool: PoolReport, received: dt.datetime
) -> dict[str, CapabilityValue]:
    capabilities: dict[str, CapabilityValue] = dict(pool.extra)
    ratio: CapabilityValue = (
        AUTO
        if pool.max_over_subscription_ratio_auto
        else pool.max_over_subscription_ratio or DEFAULT_MAX_OVER_SUBSCRIPTION_RATIO
    )
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
        max_over_subscription_ratio=ratio,
        # As Cinder's scheduler stamps a report: when it received it (shown, never compared).
        timestamp=received.isoformat(),
    )
    if pool.provisioned_capacity_gb:
        capabilities["provisioned_capacity_gb"] = pool.provisioned_capacity_gb
    return capabilities


def pool_state_from_report(
    report: BackendReport, pool: PoolReport, received: dt.datetime
) -> PoolState:
    """The pool's state from its report, received at ``received`` (wall clock, for show)."""
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
        capabilities=_capabilities(report, pool, received),
        max_over_subscription_ratio_auto=pool.max_over_subscription_ratio_auto,
    )


@dataclass
class _Backend:
    stream: object
    incarnation: str
    sequence: int
    #: Monotonic time of the last report accepted.
    received_at: float
    pool_ids: frozenset[str]
    #: Its going down was logged (once per silence).
    down_logged: bool = False


class BackendStates:
    """The pools of every reporting backend, by ``host@backend#pool``.

    All methods are synchronous, so that a placement reads one consistent view. ``clock`` is
    monotonic (seconds); ``wall_clock`` only stamps the ``timestamp`` capability.
    """

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        service_down_time: float = 60.0,
        wall_clock: Callable[[], dt.datetime] = _utcnow,
    ) -> None:
        self._clock = clock
        self._wall_clock = wall_clock
        self._service_down_time = service_down_time
        self._pools: dict[str, PoolState] = {}
        self._backends: dict[str, _Backend] = {}
        #: Set once the first report arrived.
        self.first_report = asyncio.Event()

    def update(self, report: BackendReport, stream: object) -> bool:
        """Takes a report received on ``stream``; False if it was stale (a lower sequence
        than the last report of the same incarnation)."""
        known = self._backends.get(report.backend)
        if (
            known is not None
            and known.incarnation == report.incarnation
            and report.sequence < known.sequence
        ):
            log.debug(
                "Ignoring old capability report %s of %s (have %s)",
                report.sequence,
                report.backend,
                known.sequence,
            )
            return False
        if known is not None and known.incarnation != report.incarnation:
            log.info("Backend %s restarted (incarnation %s)", report.backend, report.incarnation)
        received = self._wall_clock()
        pool_ids: set[str] = set()
        for pool in report.pools:
            pool_id = f"{report.backend}#{pool.pool_name}"
            self._pools[pool_id] = pool_state_from_report(report, pool, received)
            pool_ids.add(pool_id)
        for gone in (known.pool_ids if known else frozenset()) - pool_ids:
            log.info("Removing non-active pool %s", gone)
            self._pools.pop(gone, None)
        if known is not None and known.down_logged:
            log.info("volume service is up again. (host: %s)", report.backend)
        self._backends[report.backend] = _Backend(
            stream, report.incarnation, report.sequence, self._clock(), frozenset(pool_ids)
        )
        self.first_report.set()
        return True

    def remove(self, backend: str, stream: object) -> None:
        """Forgets ``backend`` if ``stream`` is the one that reported it last (a stream that
        replaced another before the old one ended keeps its pools)."""
        known = self._backends.get(backend)
        if known is None or known.stream is not stream:
            return
        log.info("Removing non-active backend %s", backend)
        del self._backends[backend]
        for pool_id in known.pool_ids:
            self._pools.pop(pool_id, None)

    def is_up(self, backend: str) -> bool:
        """Cinder's ``service_is_up``: its last report is at most ``service_down_time`` old."""
        known = self._backends.get(backend)
        if known is None:
            return False
        up = self._clock() - known.received_at <= self._service_down_time
        if not up and not known.down_logged:
            known.down_logged = True
            log.warning("volume service is down. (host: %s)", backend)
        return up

    def backends(self) -> list[str]:
        """Every backend with pools kept, up or down."""
        return list(self._backends)

    def pools(self) -> list[PoolState]:
        """The pools of the backends that are up, in the order their backends first reported."""
        up: dict[str, bool] = {}
        found = []
        for pool in self._pools.values():
            if pool.backend not in up:
                up[pool.backend] = self.is_up(pool.backend)
            if up[pool.backend]:
                found.append(pool)
        return found

    def pool(self, pool_id: str) -> PoolState | None:
        """The pool if its backend is up."""
        pool = self._pools.get(pool_id)
        if pool is None or not self.is_up(pool.backend):
            return None
        return pool

    def pool_views(self) -> list[PoolView]:
        """The pools for ``get_pools`` (the backends that are up), as reported."""
        return [PoolView(p.pool_id, dict(p.capabilities)) for p in self.pools()]
