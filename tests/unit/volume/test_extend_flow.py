"""The manager's extend flow on a real database and the real file driver: the new size and
the quota are written once, by the UPDATE that ends the extend; a failure ends in
error_extending with the quota given back and Cinder's message; recovery and the sweep run an
extend nobody finished; an admin's reset gives the pending quota back, and the extend that
then ends changes nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlmodel import select

from cindermesh.db import quota, volume_actions, volumes
from cindermesh.db.engine import Database
from cindermesh.db.models import Message, QuotaUsage, Reservation, Volume, VolumeStatus
from cindermesh.settings import BackendSettings, QuotaSettings
from services.volume.action_services import ActionServices
from services.volume.create_flow import FlowServices
from services.volume.drivers.file import FileDriver
from services.volume.extend_flow import run_extend
from services.volume.manager import Manager

from .helpers import (
    BACKEND_HOST,
    OTHER_WORKER,
    PROJECT,
    WORKER,
    add_volume,
    claim,
    reload,
)

GIB = 1024**3


@pytest.fixture
async def file_driver(tmp_path: Path) -> FileDriver:
    driver = FileDriver(BackendSettings(name="file-1"), tmp_path / "images")
    await driver.do_setup()
    return driver


@pytest.fixture
def actions(db: Database, file_driver: FileDriver) -> ActionServices:
    return ActionServices(db=db, driver=file_driver, worker=WORKER)


async def _gigabytes(db: Database) -> tuple[int, int]:
    async with db.read() as session:
        row = await session.get(QuotaUsage, (PROJECT, "gigabytes"))
        return (row.in_use, row.reserved) if row is not None else (0, 0)


async def _available_volume(db: Database, driver: FileDriver, size: int) -> Volume:
    volume = await add_volume(db, size=size, status=VolumeStatus.AVAILABLE)
    await driver.create_volume(volume.id, size)
    return volume


async def _start_extend(db: Database, volume: Volume, new_size: int) -> None:
    """What the api's extend writes."""
    async with db.session() as session:
        locked = await volumes.locked(session, volume.id)
        assert locked is not None
        increase = {"gigabytes": new_size - volume.size}
        ids = await quota.reserve(session, PROJECT, increase, QuotaSettings())
        assert await volume_actions.start_extend(session, locked, new_size, ids)


async def _reservations(db: Database) -> int:
    async with db.read() as session:
        return len(list(await session.exec(select(Reservation))))


async def test_extend_writes_size_status_and_quota_once(
    db: Database, file_driver: FileDriver, actions: ActionServices
) -> None:
    volume = await _available_volume(db, file_driver, 2)
    before = await _gigabytes(db)
    await _start_extend(db, volume, 5)
    assert await _gigabytes(db) == (before[0], before[1] + 3)
    await claim(db, volume.id, VolumeStatus.EXTENDING)
    state = await run_extend(actions, volume.id)
    assert not state.errored
    row = await reload(db, volume.id)
    assert row is not None
    assert (row.status, row.size, row.extend_to_gb, row.pending_reservations) == (
        VolumeStatus.AVAILABLE,
        5,
        None,
        "",
    )
    assert row.worker is None
    assert file_driver.path(volume.id).stat().st_size == 5 * GIB
    assert await _gigabytes(db) == (before[0] + 3, before[1])
    assert await _reservations(db) == 0
    # A second end finds nothing to end: the quota is not counted twice.
    async with db.session() as session:
        assert not await volume_actions.end_extend(session, volume.id, WORKER, succeeded=True)
    assert await _gigabytes(db) == (before[0] + 3, before[1])


async def test_driver_failure_ends_in_error_extending_with_the_quota_back(
    db: Database, file_driver: FileDriver, actions: ActionServices
) -> None:
    volume = await _available_volume(db, file_driver, 2)
    file_driver.path(volume.id).unlink()
    before = await _gigabytes(db)
    await _start_extend(db, volume, 3)
    await claim(db, volume.id, VolumeStatus.EXTENDING)
    state = await run_extend(actions, volume.id)
    assert state.errored
    row = await reload(db, volume.id)
    assert row is not None
    assert (row.status, row.size, row.pending_reservations) == (
        VolumeStatus.ERROR_EXTENDING,
        2,
        "",
    )
    assert await _gigabytes(db) == before
    assert await _reservations(db) == 0
    async with db.read() as session:
        messages = list(await session.exec(select(Message)))
    assert [(m.resource_uuid, m.event_id) for m in messages] == [
        (volume.id, "VOLUME_VOLUME_007_010")
    ]


async def test_an_extend_not_held_by_this_worker_changes_nothing(
    db: Database, file_driver: FileDriver, actions: ActionServices
) -> None:
    volume = await _available_volume(db, file_driver, 1)
    await _start_extend(db, volume, 2)
    await claim(db, volume.id, VolumeStatus.EXTENDING, worker=OTHER_WORKER)
    state = await run_extend(actions, volume.id)
    assert not state.errored
    row = await reload(db, volume.id)
    assert row is not None and (row.status, row.size) == (VolumeStatus.EXTENDING, 1)
    assert file_driver.path(volume.id).stat().st_size == 1 * GIB


async def test_reset_status_gives_the_pending_quota_back_once(
    db: Database, file_driver: FileDriver, actions: ActionServices
) -> None:
    volume = await _available_volume(db, file_driver, 1)
    before = await _gigabytes(db)
    await _start_extend(db, volume, 4)
    await claim(db, volume.id, VolumeStatus.EXTENDING)
    async with db.session() as session:
        locked = await volumes.locked(session, volume.id)
        assert locked is not None
        assert await volume_actions.reset_status(session, locked, {"status": "available"})
    assert await _gigabytes(db) == before
    # The extend that was running ends against a row it no longer holds.
    state = await run_extend(actions, volume.id)
    row = await reload(db, volume.id)
    assert row is not None and (row.status, row.size) == (VolumeStatus.AVAILABLE, 1)
    assert not state.errored
    assert await _gigabytes(db) == before
    assert await _reservations(db) == 0


async def test_recovery_and_the_sweep_run_unfinished_extends(
    services: FlowServices, db: Database, file_driver: FileDriver, actions: ActionServices
) -> None:
    interrupted = await _available_volume(db, file_driver, 1)
    await _start_extend(db, interrupted, 2)
    await claim(db, interrupted.id, VolumeStatus.EXTENDING, worker=OTHER_WORKER)
    manager = Manager(services, BACKEND_HOST, actions=actions)
    await manager.recover()
    await manager.join()
    row = await reload(db, interrupted.id)
    assert row is not None and (row.status, row.size) == (VolumeStatus.AVAILABLE, 2)
    # Accepted by the api while no manager answered: nobody holds it, the sweep takes it.
    unheld = await _available_volume(db, file_driver, 1)
    await _start_extend(db, unheld, 3)
    await manager.sweep_once()
    await manager.join()
    row = await reload(db, unheld.id)
    assert row is not None and (row.status, row.size) == (VolumeStatus.AVAILABLE, 3)
    assert file_driver.path(unheld.id).stat().st_size == 3 * GIB
    # An admin's reset to extending (no target size) is no work for a manager.
    async with db.session() as session:
        locked = await volumes.locked(session, unheld.id)
        assert locked is not None
        assert await volume_actions.reset_status(session, locked, {"status": "extending"})
    await manager.sweep_once()
    await manager.join()
    row = await reload(db, unheld.id)
    assert row is not None and (row.status, row.size) == (VolumeStatus.EXTENDING, 3)


async def test_a_volume_destroyed_while_extending_gives_the_pending_quota_back(
    db: Database, file_driver: FileDriver
) -> None:
    volume = await _available_volume(db, file_driver, 2)
    before = await _gigabytes(db)
    await _start_extend(db, volume, 5)
    async with db.session() as session:
        assert await volumes.destroy(session, volume.id, volumes.Expect(status="extending"))
    assert await _gigabytes(db) == (before[0] - 2, before[1])
    assert await _reservations(db) == 0
