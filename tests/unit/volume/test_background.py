"""Registration, the capability stream and start-up recovery."""

from __future__ import annotations

import asyncio
from pathlib import Path

from cindermesh.db.engine import Database
from cindermesh.db.models import Service, VolumeStatus
from cindermesh.grpc_server import insecure_channel
from cindermesh.settings import Settings
from services.volume.manager import Manager
from services.volume.registration import ServiceRegistration
from services.volume.reporter import CapabilityReporter
from services.volume.scheduler_client import SchedulerClient

from .helpers import (
    BACKEND,
    HOST_NAME,
    FakeDriver,
    FakeScheduler,
    add_volume,
    reload,
    start_fake_scheduler,
)


async def test_registration_upserts_and_heartbeats(db: Database, settings: Settings) -> None:
    registration = ServiceRegistration(db, settings, settings.backend(BACKEND))
    uuid = await registration.register()
    async with db.session() as session:
        first = await session.get(Service, f"{HOST_NAME}@{BACKEND}")
    assert first is not None and first.uuid == uuid
    await asyncio.sleep(0.01)
    await registration.heartbeat()
    assert await registration.register() == uuid
    async with db.session() as session:
        again = await session.get(Service, f"{HOST_NAME}@{BACKEND}", populate_existing=True)
    assert again is not None and again.updated_at > first.updated_at


async def test_reports_at_once_on_request_and_periodically(
    settings: Settings,
    scheduler: tuple[FakeScheduler, int],
    scheduler_client: SchedulerClient,
    driver: FakeDriver,
) -> None:
    fake, _ = scheduler
    reporter = CapabilityReporter(settings, settings.backend(BACKEND), driver, scheduler_client)
    reporter.start()
    try:
        first = await fake.next_report()
        assert first.backend == f"{HOST_NAME}@{BACKEND}"
        assert [p.pool_name for p in first.pools] == [BACKEND]
        assert first.pools[0].allocated_capacity_gb == 0
        assert first.generated_at.seconds > 0
        driver.volumes["v"] = 7
        reporter.request_report()
        report = await fake.next_report(timeout=1.0)
        assert report.pools[0].allocated_capacity_gb == 7
        await fake.next_report(timeout=1.0)  # report_interval is 0.2 s
    finally:
        await reporter.stop()


async def test_reporter_reconnects_when_the_scheduler_comes_back(
    tmp_path: Path, settings: Settings, driver: FakeDriver
) -> None:
    server, fake, port = await start_fake_scheduler()
    await server.stop(None)  # the scheduler is down
    channel = insecure_channel(f"127.0.0.1:{port}")
    reporter = CapabilityReporter(
        settings, settings.backend(BACKEND), driver, SchedulerClient(channel)
    )
    reporter.start()
    try:
        await asyncio.sleep(0.5)
        server, fake, _ = await start_fake_scheduler(port)
        await fake.next_report(timeout=10.0)
        await server.stop(None)  # a restart
        server, fake, _ = await start_fake_scheduler(port)
        await fake.next_report(timeout=10.0)
        await server.stop(None)
    finally:
        await reporter.stop()
        await channel.close(None)


async def test_recovery_finishes_creates_and_deletes(
    manager: Manager, db: Database, driver: FakeDriver
) -> None:
    creating = await add_volume(db, size=2)
    deleting = await add_volume(db, status=VolumeStatus.DELETING)
    others = await add_volume(db, host="elsewhere@file-9#file-9")
    unplaced = await add_volume(db, host=None)
    driver.volumes[deleting.id] = 1
    await manager.recover()
    await manager.join()
    row = await reload(db, creating.id)
    assert row is not None and row.status == VolumeStatus.AVAILABLE
    assert await reload(db, deleting.id) is None
    for untouched in (others, unplaced):
        row = await reload(db, untouched.id)
        assert row is not None and row.status == VolumeStatus.CREATING
    assert driver.volumes == {creating.id: 2}


async def test_recovered_create_that_fails_is_not_rescheduled(
    manager: Manager, db: Database, driver: FakeDriver, scheduler: tuple[FakeScheduler, int]
) -> None:
    driver.fail_create = "still broken"
    volume = await add_volume(db)
    await manager.recover()
    await manager.join()
    row = await reload(db, volume.id)
    assert row is not None and row.status == VolumeStatus.ERROR
    assert not row.quota_held
    assert scheduler[0].creates == []
