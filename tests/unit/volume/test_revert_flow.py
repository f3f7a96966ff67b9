"""The manager's revert flow on a real database and the real file driver: the content comes
back from the snapshot and both rows end available; a driver failure ends the volume in error
and the snapshot available again (Cinder's rule); a row not held changes nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from cindermesh.db import volume_actions, volumes
from cindermesh.db.engine import Database
from cindermesh.db.models import Snapshot, SnapshotStatus, Volume, VolumeStatus
from cindermesh.settings import BackendSettings
from services.volume.action_services import ActionServices
from services.volume.drivers.base import SnapshotRef
from services.volume.drivers.file import FileDriver
from services.volume.revert_flow import run_revert

from .helpers import OTHER_WORKER, PROJECT, WORKER, add_volume, claim, reload


@pytest.fixture
async def file_driver(tmp_path: Path) -> FileDriver:
    driver = FileDriver(BackendSettings(name="file-1"), tmp_path / "images")
    await driver.do_setup()
    return driver


@pytest.fixture
def actions(db: Database, file_driver: FileDriver) -> ActionServices:
    return ActionServices(db=db, driver=file_driver, worker=WORKER)


async def _snapshotted(db: Database, driver: FileDriver) -> tuple[Volume, Snapshot]:
    """An available volume with "before" written, snapshotted, then "after!" written."""
    volume = await add_volume(db, size=1, status=VolumeStatus.AVAILABLE)
    await driver.create_volume(volume.id, 1)
    with driver.path(volume.id).open("r+b") as image:
        image.write(b"before")
    snapshot = Snapshot(
        project_id=PROJECT,
        user_id="user-1",
        volume_id=volume.id,
        volume_size=1,
        status=SnapshotStatus.AVAILABLE,
        progress="100%",
    )
    async with db.session() as session:
        session.add(snapshot)
    await driver.create_snapshot(SnapshotRef(id=snapshot.id, volume_id=volume.id, volume_size_gb=1))
    with driver.path(volume.id).open("r+b") as image:
        image.write(b"after!")
    return volume, snapshot


async def _start_revert(db: Database, volume: Volume, snapshot: Snapshot) -> None:
    async with db.session() as session:
        locked = await volumes.locked(session, volume.id)
        assert locked is not None
        assert await volume_actions.start_revert(session, locked, snapshot) is None


async def _snapshot_status(db: Database, snapshot_id: str) -> str:
    async with db.read() as session:
        found = await session.get(Snapshot, snapshot_id, populate_existing=True)
        assert found is not None
        return found.status


async def test_revert_brings_the_content_back(
    db: Database, file_driver: FileDriver, actions: ActionServices
) -> None:
    volume, snapshot = await _snapshotted(db, file_driver)
    await _start_revert(db, volume, snapshot)
    assert await _snapshot_status(db, snapshot.id) == SnapshotStatus.RESTORING
    await claim(db, volume.id, VolumeStatus.REVERTING)
    state = await run_revert(actions, volume.id)
    assert not state.errored
    row = await reload(db, volume.id)
    assert row is not None and (row.status, row.worker) == (VolumeStatus.AVAILABLE, None)
    assert await _snapshot_status(db, snapshot.id) == SnapshotStatus.AVAILABLE
    with file_driver.path(volume.id).open("rb") as image:
        assert image.read(6) == b"before"
    assert file_driver.path(volume.id).stat().st_size == 1024**3


async def test_driver_failure_ends_the_volume_in_error(
    db: Database, file_driver: FileDriver, actions: ActionServices
) -> None:
    volume, snapshot = await _snapshotted(db, file_driver)
    ref = SnapshotRef(id=snapshot.id, volume_id=volume.id, volume_size_gb=1)
    file_driver.snapshot_path(ref).unlink()
    await _start_revert(db, volume, snapshot)
    await claim(db, volume.id, VolumeStatus.REVERTING)
    state = await run_revert(actions, volume.id)
    assert state.errored
    row = await reload(db, volume.id)
    assert row is not None and row.status == VolumeStatus.ERROR
    assert await _snapshot_status(db, snapshot.id) == SnapshotStatus.AVAILABLE


async def test_a_revert_not_held_changes_nothing(
    db: Database, file_driver: FileDriver, actions: ActionServices
) -> None:
    volume, snapshot = await _snapshotted(db, file_driver)
    await _start_revert(db, volume, snapshot)
    await claim(db, volume.id, VolumeStatus.REVERTING, worker=OTHER_WORKER)
    await run_revert(actions, volume.id)
    row = await reload(db, volume.id)
    assert row is not None and row.status == VolumeStatus.REVERTING
    with file_driver.path(volume.id).open("rb") as image:
        assert image.read(6) == b"after!"


async def test_start_revert_refuses_a_snapshot_not_available(
    db: Database, file_driver: FileDriver
) -> None:
    volume, snapshot = await _snapshotted(db, file_driver)
    async with db.session() as session:
        found = await session.get(Snapshot, snapshot.id)
        assert found is not None
        found.status = SnapshotStatus.ERROR
    async with db.session() as session:
        locked = await volumes.locked(session, volume.id)
        assert locked is not None
        assert await volume_actions.start_revert(session, locked, snapshot) == "snapshot"
    row = await reload(db, volume.id)
    assert row is not None and row.status == VolumeStatus.AVAILABLE
