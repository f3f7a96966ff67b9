"""The capability stream to the scheduler.

One ReportCapabilities stream stays open: a report at once, then every ``report_interval``,
soon after each create or delete (``request_report``; bursts are coalesced), and whenever the
driver's numbers change (the capacity is read every ``CHANGE_POLL`` seconds and sent only if it
differs from the last report: a Ceph pool's usage changes without us). If the scheduler is
down or the stream breaks, it reconnects with exponential backoff; nothing here ever raises.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from cindermesh.settings import BackendSettings, Settings
from cindermesh_pb.scheduler.v1 import scheduler_pb2
from services.volume.domain import backend_host
from services.volume.drivers.base import CapacityStats, VolumeDriver
from services.volume.scheduler_client import ReportStream, SchedulerClient

__all__ = ["CapabilityReporter", "build_report"]

log = logging.getLogger(__name__)

BACKOFF_INITIAL = 0.2
#: Short, so that a scheduler that restarts knows this backend within a second.
BACKOFF_MAX = 1.0
#: Extra reports wanted within this many seconds are sent together.
COALESCE = 0.05
#: Seconds between two reads of the capacity, to send a report when it changed.
CHANGE_POLL = 1.0


async def build_report(
    settings: Settings, backend: BackendSettings, driver: VolumeDriver
) -> scheduler_pb2.CapabilityReport:
    stats = await driver.get_capacity()
    generated_at = Timestamp()
    generated_at.GetCurrentTime()
    info = driver.info
    pool = scheduler_pb2.PoolCapabilities(
        pool_name=backend.name,
        total_capacity_gb=stats.total_capacity_gb,
        free_capacity_gb=stats.free_capacity_gb,
        allocated_capacity_gb=stats.allocated_capacity_gb,
        provisioned_capacity_gb=stats.provisioned_capacity_gb,
        thin_provisioning_support=stats.thin_provisioning_support,
        thick_provisioning_support=stats.thick_provisioning_support,
        max_over_subscription_ratio=stats.max_over_subscription_ratio,
        reserved_percentage=stats.reserved_percentage,
        extra=_extra(stats),
    )
    return scheduler_pb2.CapabilityReport(
        backend=backend_host(settings.host_name, backend.name),
        volume_backend_name=backend.name,
        availability_zone=backend.availability_zone,
        address=backend.address,
        vendor_name=info.vendor_name,
        driver_version=info.driver_version,
        storage_protocol=info.storage_protocol,
        pools=[pool],
        generated_at=generated_at,
    )


def _extra(stats: CapacityStats) -> dict[str, str]:
    extra = dict(stats.extra)
    extra["total_volumes"] = str(stats.total_volumes)
    extra["backend_state"] = stats.backend_state
    if stats.location_info is not None:
        extra["location_info"] = stats.location_info
    return extra


def _numbers(report: scheduler_pb2.CapabilityReport) -> bytes:
    """The report without its timestamp, to tell whether anything changed."""
    copy = scheduler_pb2.CapabilityReport()
    copy.CopyFrom(report)
    copy.ClearField("generated_at")
    return copy.SerializeToString(deterministic=True)


def _describe(error: Exception) -> str:
    if isinstance(error, grpc.aio.AioRpcError):
        return f"{error.code().name}: {error.details()}"
    return repr(error)


class CapabilityReporter:
    def __init__(
        self,
        settings: Settings,
        backend: BackendSettings,
        driver: VolumeDriver,
        scheduler: SchedulerClient,
    ) -> None:
        self._settings = settings
        self._backend = backend
        self._driver = driver
        self._scheduler = scheduler
        self._wanted = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        #: Reports written so far (for tests and logs).
        self.sent = 0
        self._last: bytes | None = None
        self._last_at = 0.0

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="capability-reporter")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def request_report(self) -> None:
        """Asks for a report soon (after a create or a delete changed the capacity)."""
        self._wanted.set()

    async def _run(self) -> None:
        backoff = BACKOFF_INITIAL
        quiet = False  # after the first failure, retries log at debug level only
        while True:
            try:
                connected = await self._stream_once()
            except asyncio.CancelledError:
                raise
            except Exception as error:
                connected = False
                level = logging.DEBUG if quiet else logging.WARNING
                log.log(level, "capability stream to the scheduler failed: %s", _describe(error))
            quiet = not connected
            backoff = BACKOFF_INITIAL if connected else min(backoff * 2, BACKOFF_MAX)
            await asyncio.sleep(backoff)

    async def _stream_once(self) -> bool:
        """Runs one stream until it ends; True if at least one report went through."""
        stream = self._scheduler.report_stream()
        closed = asyncio.ensure_future(self._wait_closed(stream))
        connected = False
        loop = asyncio.get_running_loop()
        try:
            while not closed.done():
                forced = self._wanted.is_set() or not connected
                report = await self._report()
                numbers = _numbers(report)
                due = loop.time() - self._last_at >= self._backend.report_interval
                if forced or due or numbers != self._last:
                    await stream.write(report)
                    self._last, self._last_at = numbers, loop.time()
                    self.sent += 1
                if not connected:
                    log.info("capability stream to the scheduler open")
                    connected = True
                await self._wait_for_next(closed)
            closed.result()
            log.warning("the scheduler closed the capability stream")
        finally:
            closed.cancel()
            stream.cancel()
        return connected

    @staticmethod
    async def _wait_closed(stream: ReportStream) -> None:
        await stream

    async def _report(self) -> scheduler_pb2.CapabilityReport:
        self._wanted.clear()
        return await build_report(self._settings, self._backend, self._driver)

    async def _wait_wanted(self) -> None:
        await self._wanted.wait()

    async def _wait_for_next(self, closed: asyncio.Future[None]) -> None:
        wanted = asyncio.ensure_future(self._wait_wanted())
        try:
            await asyncio.wait(
                {wanted, closed},
                timeout=min(self._backend.report_interval, CHANGE_POLL),
                return_when=asyncio.FIRST_COMPLETED,
            )
        finally:
            wanted.cancel()
        if self._wanted.is_set() and not closed.done():
            await asyncio.sleep(COALESCE)
