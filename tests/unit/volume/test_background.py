"""Registration and start-up recovery (the capability reports: ``test_reporter.py``)."""

from __future__ import annotations

import asyncio

from cindermesh.db.engine import Database
from cindermesh.db.models import Service, VolumeStatus
from cindermesh.settings import Settings
from services.volume.create_flow import FlowServices
from services.volume.manager import Manager
from services.volume.registration import ServiceRegistration

from .helpers import (
    BACKEND,
    BACKEND_HOST,
    HOST_NAME,
    POOL,
    FakeDriver,
    FakeScheduler,
    add_volume,
    later,
    reload,
    usage,
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
    assert (row.worker, row.lease_expires_at) == (None, None)
    assert await reload(db, deleting.id) is None
    for untouched in (others, unplaced):
        row = await reload(db, untouched.id)
        assert row is not None and row.status == VolumeStatus.CREATING
        assert (row.host, row.worker) == (untouched.host, None)
    assert driver.volumes == {creating.id: 2}


async def test_recovered_create_that_fails_goes_back_to_the_scheduler(
    manager: Manager, db: Database, driver: FakeDriver, scheduler: tuple[FakeScheduler, int]
) -> None:
    """Recovered work is handed back like any other: the attempts are on the row."""
    driver.fail_create = "still broken"
    volume = await add_volume(db, schedule_attempts=1, tried_hosts=("other@b#b",))
    before = await usage(db)
    await manager.recover()
    await manager.join()
    row = await reload(db, volume.id)
    assert row is not None
    assert (row.status, row.host, row.worker) == (VolumeStatus.CREATING, None, None)
    assert (row.schedule_attempts, row.tried_hosts) == (2, f"other@b#b\n{POOL}")
    assert row.error_reason is None and row.quota_held
    assert await usage(db) == before
    [sent] = scheduler[0].creates
    assert (sent.spec.volume_id, sent.retry.num_attempts) == (volume.id, 2)
    assert list(sent.retry.hosts) == ["other@b#b", POOL]


async def test_recover_takes_over_a_dead_workers_rows_and_removes_orphan_images(
    services: FlowServices, db: Database, driver: FakeDriver
) -> None:
    dead = f"{BACKEND_HOST}/dead-run"
    # The previous run held these with leases that have not lapsed yet: taken over at once.
    creating = await add_volume(db, size=2, worker=dead, lease_expires_at=later(600))
    deleting = await add_volume(
        db, status=VolumeStatus.DELETING, worker=dead, lease_expires_at=later(600)
    )
    # Placed elsewhere since the previous run lost it, and held there: not ours.
    moved = await add_volume(
        db, host="node2@file-2#file-2", worker="node2@file-2/w", lease_expires_at=later(600)
    )
    # Handed back and waiting for a scheduler: not ours either.
    waiting = await add_volume(db, host=None, schedule_attempts=1, tried_hosts=(POOL,))
    available = await add_volume(db, status=VolumeStatus.AVAILABLE)
    # The images the previous run left behind.
    driver.volumes.update(
        {creating.id: 2, deleting.id: 1, moved.id: 1, waiting.id: 1, available.id: 1, "gone": 1}
    )
    reports: list[None] = []
    manager = Manager(services, BACKEND_HOST, on_capacity_change=lambda: reports.append(None))

    await manager.recover()
    await manager.join()

    assert driver.volumes == {creating.id: 2, available.id: 1}
    assert sorted(set(driver.deleted)) == sorted({deleting.id, moved.id, waiting.id, "gone"})
    row = await reload(db, creating.id)
    assert row is not None and row.status == VolumeStatus.AVAILABLE
    assert (row.worker, row.lease_expires_at) == (None, None)
    assert await reload(db, deleting.id) is None
    row = await reload(db, moved.id)
    assert row is not None
    assert (row.status, row.host, row.worker) == (
        VolumeStatus.CREATING,
        "node2@file-2#file-2",
        "node2@file-2/w",
    )
    row = await reload(db, waiting.id)
    assert row is not None and (row.host, row.worker, row.schedule_attempts) == (None, None, 1)
    assert reports  # the capacity changed: a report is asked for
