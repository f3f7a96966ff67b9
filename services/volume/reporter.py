"""The backend's capability reports, published to every scheduler that watches them.

Every scheduler replica keeps a ``VolumeManager.WatchCapabilities`` stream open to this
manager; :class:`CapabilityPublisher` makes the reports and hands each to every watcher. A
report is made at once, then every ``report_interval``, soon after each create or delete
(``request_report``; bursts are coalesced), and whenever the driver's numbers change (the
capacity is read every ``CHANGE_POLL`` seconds and published only if it differs from the last
report: a Ceph pool's usage changes without us).

Each report carries this process's incarnation (a uuid) and a sequence number that increases
with every report published; a watcher gets the latest report at once, then every new one. A
watcher that is slow to take them (a stalled stream) is never waited for: it only ever holds
the latest report it has not sent yet, so it cannot block the others or the manager.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import uuid
from collections.abc import AsyncGenerator

from cindermesh.settings import BackendSettings, Settings
from cindermesh_pb.volume.v1 import volume_manager_pb2
from services.volume.domain import backend_host
from services.volume.drivers.base import CapacityStats, VolumeDriver

__all__ = ["CHANGE_POLL", "CapabilityPublisher", "build_report", "capacity_to_pb"]

log = logging.getLogger(__name__)

#: Extra reports wanted within this many seconds are made together.
COALESCE = 0.05
#: Seconds between two reads of the capacity, to publish a report when it changed.
CHANGE_POLL = 1.0
#: Seconds before reading the capacity again after the driver failed to give it.
RETRY_AFTER_FAILURE = 1.0


def capacity_to_pb(value: float) -> volume_manager_pb2.Capacity:
    """A capacity in GiB; ``math.inf``/``math.nan`` are Cinder's ``infinite``/``unknown``."""
    if math.isinf(value):
        return volume_manager_pb2.Capacity(unbounded=volume_manager_pb2.INFINITE)
    if math.isnan(value):
        return volume_manager_pb2.Capacity(unbounded=volume_manager_pb2.UNKNOWN)
    return volume_manager_pb2.Capacity(gb=value)


async def build_report(
    settings: Settings, backend: BackendSettings, driver: VolumeDriver
) -> volume_manager_pb2.CapabilityReport:
    """The backend's report as the driver gives it now (no incarnation, no sequence yet)."""
    stats = await driver.get_capacity()
    info = driver.info
    pool = volume_manager_pb2.PoolCapabilities(
        pool_name=backend.name,
        total_capacity_gb=capacity_to_pb(stats.total_capacity_gb),
        free_capacity_gb=capacity_to_pb(stats.free_capacity_gb),
        allocated_capacity_gb=stats.allocated_capacity_gb,
        provisioned_capacity_gb=stats.provisioned_capacity_gb,
        thin_provisioning_support=stats.thin_provisioning_support,
        thick_provisioning_support=stats.thick_provisioning_support,
        max_over_subscription_ratio=stats.max_over_subscription_ratio,
        reserved_percentage=stats.reserved_percentage,
        extra=_extra(stats),
    )
    return volume_manager_pb2.CapabilityReport(
        backend=backend_host(settings.host_name, backend.name),
        volume_backend_name=backend.name,
        availability_zone=backend.availability_zone,
        vendor_name=info.vendor_name,
        driver_version=info.driver_version,
        storage_protocol=info.storage_protocol,
        pools=[pool],
    )


def _extra(stats: CapacityStats) -> dict[str, str]:
    extra = dict(stats.extra)
    extra["total_volumes"] = str(stats.total_volumes)
    extra["backend_state"] = stats.backend_state
    if stats.location_info is not None:
        extra["location_info"] = stats.location_info
    return extra


def _numbers(report: volume_manager_pb2.CapabilityReport) -> bytes:
    """The report without its incarnation and sequence, to tell whether anything changed."""
    copy = volume_manager_pb2.CapabilityReport()
    copy.CopyFrom(report)
    copy.ClearField("manager_incarnation")
    copy.ClearField("sequence")
    return copy.SerializeToString(deterministic=True)


class _Watcher:
    """One watcher's mailbox: the latest report it has not taken yet (older ones dropped)."""

    def __init__(self) -> None:
        self.pending: volume_manager_pb2.CapabilityReport | None = None
        self.closed = False
        self.ready = asyncio.Event()

    def offer(self, report: volume_manager_pb2.CapabilityReport) -> None:
        self.pending = report
        self.ready.set()

    def close(self) -> None:
        self.closed = True
        self.ready.set()


class CapabilityPublisher:
    """Makes the backend's reports and serves them to any number of watchers."""

    def __init__(
        self,
        settings: Settings,
        backend: BackendSettings,
        driver: VolumeDriver,
        incarnation: str | None = None,
    ) -> None:
        self._settings = settings
        self._backend = backend
        self._driver = driver
        #: This process's identity in its reports.
        self.incarnation = incarnation or str(uuid.uuid4())
        self._wanted = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._watchers: set[_Watcher] = set()
        self._latest: volume_manager_pb2.CapabilityReport | None = None
        self._last_numbers: bytes | None = None
        self._last_at = 0.0
        self._stopped = False
        #: Reports published so far (the last one's sequence).
        self.published = 0

    @property
    def latest(self) -> volume_manager_pb2.CapabilityReport | None:
        """The last report published (None before the first)."""
        return self._latest

    @property
    def watchers(self) -> int:
        return len(self._watchers)

    def start(self) -> None:
        self._stopped = False
        self._task = asyncio.create_task(self._run(), name="capability-publisher")

    async def stop(self) -> None:
        """Stops publishing and ends every watch (their streams end cleanly)."""
        self._stopped = True
        for watcher in self._watchers:
            watcher.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def request_report(self) -> None:
        """Asks for a report soon (after a create or a delete changed the capacity)."""
        self._wanted.set()

    async def watch(self) -> AsyncGenerator[volume_manager_pb2.CapabilityReport, None]:
        """The latest report at once (as soon as there is one), then every new one, until the
        publisher stops or the caller stops iterating."""
        watcher = _Watcher()
        if self._stopped:
            return
        if self._latest is not None:
            watcher.offer(self._latest)
        self._watchers.add(watcher)
        try:
            while True:
                await watcher.ready.wait()
                watcher.ready.clear()
                report, watcher.pending = watcher.pending, None
                if watcher.closed:
                    return
                if report is not None:
                    yield report
        finally:
            self._watchers.discard(watcher)

    def _publish(self, report: volume_manager_pb2.CapabilityReport) -> None:
        self.published += 1
        report.manager_incarnation = self.incarnation
        report.sequence = self.published
        self._latest = report
        for watcher in self._watchers:
            watcher.offer(report)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        failing = False  # after the first failure, failures log at debug level only
        while True:
            forced = self._wanted.is_set() or self._latest is None
            self._wanted.clear()
            try:
                report = await build_report(self._settings, self._backend, self._driver)
            except asyncio.CancelledError:
                raise
            except Exception as error:
                log.log(
                    logging.DEBUG if failing else logging.WARNING,
                    "could not read the backend's capacity for its report: %r",
                    error,
                )
                failing = True
                await asyncio.sleep(RETRY_AFTER_FAILURE)
                continue
            failing = False
            numbers = _numbers(report)
            due = loop.time() - self._last_at >= self._backend.report_interval
            if forced or due or numbers != self._last_numbers:
                self._publish(report)
                self._last_numbers, self._last_at = numbers, loop.time()
            await self._wait_for_next()

    async def _wait_for_next(self) -> None:
        timeout = min(self._backend.report_interval, CHANGE_POLL)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wanted.wait(), timeout)
        if self._wanted.is_set():
            await asyncio.sleep(COALESCE)
