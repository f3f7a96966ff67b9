"""The manager's snapshot work on a real SQLite database and the real file driver (in a temporary
directory): create and delete flows with their failure outcomes, quota given back once, claims,
the sweep, the take-over at start, admin resets left alone, and a cascading volume delete."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlmodel import col, select

from cindermesh.db import snapshots
from cindermesh.db.engine import Database
from cindermesh.db.models import Message, QuotaUsage, Snapshot, SnapshotStatus, Volume, VolumeStatus
from cindermesh.settings import BackendSettings, QuotaSettings
from services.volume.create_flow import FlowServices
from services.volume.drivers.base import SnapshotIsBusy, SnapshotRef
from services.volume.drivers.file import FileDriver
from services.volume.errors import DriverError, SnapshotStateChanged
from services.volume.manager import Manager
from services.volume.snapshot_flows import (
    SnapshotServices,
    run_create_snapshot,
    run_delete_snapshot,
)

from .helpers import BACKEND, BACKEND_HOST, OTHER_WORKER, PROJECT, WORKER, add_volume, update_row

QUOTAS = QuotaSettings()


class Driver(FileDriver):
    """The file driver, with snapshot failures on demand."""

    fail_create: Exception | None = None
    fail_delete: Exception | None = None

    async def create_snapshot(self, snapshot: SnapshotRef) -> None:
        await super().create_snapshot(snapshot)
        if self.fail_create is not None:
            raise self.fail_create

    async def delete_snapshot(self, snapshot: SnapshotRef) -> None:
        if self.fail_delete is not None:
            raise self.fail_delete
        await super().delete_snapshot(snapshot)


@pytest.fixture
async def file_driver(tmp_path: Path) -> Driver:
    driver = Driver(BackendSettings(name=BACKEND), tmp_path / "volumes")
    await driver.do_setup()
    return driver


@pytest.fixture
def work(db: Database, file_driver: Driver) -> SnapshotServices:
    return SnapshotServices(db=db, driver=file_driver, worker=WORKER, quotas=QUOTAS)


async def _volume(db: Database, driver: Driver) -> Volume:
    volume = await add_volume(db, size=2, status=VolumeStatus.AVAILABLE)
    await driver.create_volume(volume.id, 2)
    return volume


async def _snapshot(db: Database, volume: Volume) -> Snapshot:
    """What the api writes: the row (``creating``) with its quota."""
    async with db.session() as session:
        new = snapshots.NewSnapshot(project_id=PROJECT, user_id="u")
        return await snapshots.create(session, volume, new, QUOTAS)


async def _row(db: Database, snapshot_id: str) -> Snapshot | None:
    async with db.read() as session:
        return await session.get(Snapshot, snapshot_id, populate_existing=True)


async def _in_use(db: Database, resource: str) -> int:
    async with db.read() as session:
        row = await session.get(QuotaUsage, (PROJECT, resource))
        return 0 if row is None else row.in_use


async def _events(db: Database, snapshot_id: str) -> list[str]:
    """Cinder's user messages recorded for the snapshot."""
    async with db.read() as session:
        query = select(Message.event_id).where(col(Message.resource_uuid) == snapshot_id)
        return list(await session.exec(query))


async def _hold(db: Database, snapshot_id: str, worker: str = WORKER) -> None:
    async with db.session() as session:
        row = await snapshots.locked(session, snapshot_id)
        assert row is not None and await snapshots.hold(session, row, worker, 60.0)


async def _mark_deleting(db: Database, snapshot_id: str) -> None:
    async with db.session() as session:
        assert await snapshots.start_delete(session, snapshot_id, None)


def _manager(work: SnapshotServices, flow: FlowServices) -> Manager:
    return Manager(flow, BACKEND_HOST, snapshots=work)


async def test_create_then_delete(
    db: Database, work: SnapshotServices, file_driver: Driver
) -> None:
    volume = await _volume(db, file_driver)
    snapshot = await _snapshot(db, volume)
    assert (await _in_use(db, "snapshots"), await _in_use(db, "gigabytes")) == (1, 4)
    await _hold(db, snapshot.id)
    state = await run_create_snapshot(work, snapshot.id)
    assert state.outcome == SnapshotStatus.AVAILABLE
    row = await _row(db, snapshot.id)
    assert row is not None and (row.status, row.progress, row.worker) == ("available", "100%", None)
    path = file_driver.snapshot_path(SnapshotRef(snapshot.id, volume.id, 2))
    assert path.exists()
    await _mark_deleting(db, snapshot.id)
    await _hold(db, snapshot.id)
    assert (await run_delete_snapshot(work, snapshot.id)).outcome == "deleted"
    assert await _row(db, snapshot.id) is None
    assert not path.exists()
    assert (await _in_use(db, "snapshots"), await _in_use(db, "gigabytes")) == (0, 2)
    # The quota was given back once: a second give-back changes nothing.
    async with db.session() as session:
        assert not await snapshots.give_back_quota(session, snapshot.id, QUOTAS)


async def test_driver_failure_on_create_is_error_and_keeps_the_quota(
    db: Database, work: SnapshotServices, file_driver: Driver
) -> None:
    volume = await _volume(db, file_driver)
    snapshot = await _snapshot(db, volume)
    await _hold(db, snapshot.id)
    file_driver.fail_create = DriverError("disk on fire")
    state = await run_create_snapshot(work, snapshot.id)
    assert state.outcome == SnapshotStatus.ERROR
    row = await _row(db, snapshot.id)
    assert row is not None and row.status == "error" and row.worker is None
    assert row.error_reason == "DriverError: disk on fire"
    # The undo removed the image the driver had made; the quota stays until the delete.
    assert not file_driver.snapshot_path(SnapshotRef(snapshot.id, volume.id, 2)).exists()
    assert await _in_use(db, "snapshots") == 1
    assert await _events(db, snapshot.id) == ["VOLUME_VOLUME_SNAPSHOT_009_013"]


@pytest.mark.parametrize(
    ("failure", "status", "event"),
    [
        (SnapshotIsBusy("snapshot-x"), "available", "VOLUME_VOLUME_SNAPSHOT_010_015"),
        (DriverError("io"), "error_deleting", "VOLUME_VOLUME_SNAPSHOT_010_016"),
    ],
)
async def test_driver_failure_on_delete_keeps_the_row(
    db: Database,
    work: SnapshotServices,
    file_driver: Driver,
    failure: Exception,
    status: str,
    event: str,
) -> None:
    volume = await _volume(db, file_driver)
    snapshot = await _snapshot(db, volume)
    await _hold(db, snapshot.id)
    await run_create_snapshot(work, snapshot.id)
    await _mark_deleting(db, snapshot.id)
    await _hold(db, snapshot.id)
    file_driver.fail_delete = failure
    assert (await run_delete_snapshot(work, snapshot.id)).outcome == status
    row = await _row(db, snapshot.id)
    assert row is not None and row.status == status and row.worker is None
    assert await _in_use(db, "snapshots") == 1
    assert await _events(db, snapshot.id) == [event]


async def test_a_snapshot_not_held_is_left_alone(
    db: Database, work: SnapshotServices, file_driver: Driver
) -> None:
    volume = await _volume(db, file_driver)
    snapshot = await _snapshot(db, volume)
    await _hold(db, snapshot.id, OTHER_WORKER)
    state = await run_create_snapshot(work, snapshot.id)
    assert isinstance(state.error, SnapshotStateChanged)
    row = await _row(db, snapshot.id)
    assert row is not None and (row.status, row.worker) == ("creating", OTHER_WORKER)


async def test_manager_accepts_sweeps_and_takes_over(
    db: Database, work: SnapshotServices, file_driver: Driver, services: FlowServices
) -> None:
    manager = _manager(work, services)
    assert manager.snapshots is not None
    volume = await _volume(db, file_driver)
    accepted, swept, other = [await _snapshot(db, volume) for _ in range(3)]
    await manager.snapshots.accept_create(accepted.id)
    await manager.join()
    # Held by a live other worker: neither the sweep nor an RPC takes it.
    await _hold(db, other.id, OTHER_WORKER)
    await manager.sweep_once()
    await manager.join()
    statuses = {s.id: (await _row(db, s.id)) for s in (accepted, swept, other)}
    assert {i: r.status for i, r in statuses.items() if r} == {
        accepted.id: "available",
        swept.id: "available",
        other.id: "creating",
    }
    # A restart takes over whatever a previous run held.
    await manager.recover()
    await manager.join()
    row = await _row(db, other.id)
    assert row is not None and row.status == "available"


async def test_an_admin_reset_is_never_taken_up(
    db: Database, work: SnapshotServices, file_driver: Driver, services: FlowServices
) -> None:
    manager = _manager(work, services)
    assert manager.snapshots is not None
    volume = await _volume(db, file_driver)
    snapshot = await _snapshot(db, volume)
    await manager.snapshots.accept_create(snapshot.id)
    await manager.join()
    async with db.session() as session:
        assert await snapshots.reset_status(session, snapshot.id, SnapshotStatus.CREATING)
    await manager.sweep_once()
    await manager.recover()
    await manager.join()
    row = await _row(db, snapshot.id)
    assert row is not None and (row.status, row.worker) == ("creating", snapshots.RESET_HOLDER)
    with pytest.raises(SnapshotStateChanged):
        await manager.snapshots.accept_delete(snapshot.id)


async def test_cascading_volume_delete_removes_the_snapshots_first(
    db: Database, work: SnapshotServices, file_driver: Driver, services: FlowServices
) -> None:
    services = FlowServices(db=db, driver=file_driver, scheduler=services.scheduler, worker=WORKER)
    manager = _manager(work, services)
    assert manager.snapshots is not None
    volume = await _volume(db, file_driver)
    made = [await _snapshot(db, volume) for _ in range(2)]
    for snapshot in made:
        await manager.snapshots.accept_create(snapshot.id)
    await manager.join()
    async with db.session() as session:
        assert await snapshots.go_with_volume(session, volume.id, True, False, PROJECT)
    await update_row(db, volume.id, status=VolumeStatus.DELETING)
    await manager.accept_delete(volume.id)
    await manager.join()
    assert [await _row(db, s.id) for s in made] == [None, None]
    async with db.read() as session:
        assert await session.get(Volume, volume.id) is None
    assert not file_driver.path(volume.id).exists()
    assert (await _in_use(db, "snapshots"), await _in_use(db, "gigabytes")) == (0, 0)


async def test_a_volume_with_snapshots_goes_only_with_cascade(
    db: Database, file_driver: Driver
) -> None:
    volume = await _volume(db, file_driver)
    snapshot = await _snapshot(db, volume)
    async with db.session() as session:
        assert not await snapshots.go_with_volume(session, volume.id, False, False, None)
        # Still creating: only a forced cascade takes it.
        assert not await snapshots.go_with_volume(session, volume.id, True, False, None)
        assert not await snapshots.go_with_volume(session, volume.id, True, False, "other")
    async with db.session() as session:
        assert await snapshots.go_with_volume(session, volume.id, True, True, None)
    row = await _row(db, snapshot.id)
    assert row is not None and row.status == "deleting"
