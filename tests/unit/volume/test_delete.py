from __future__ import annotations

import asyncio
from pathlib import Path

from cindermesh.db.engine import Database
from cindermesh.db.models import VolumeMetadata, VolumeStatus
from cindermesh.settings import BackendSettings
from services.volume import store
from services.volume.delete import run_delete
from services.volume.drivers.file import FileDriver
from services.volume.manager import Manager

from .helpers import (
    OTHER_WORKER,
    WORKER,
    FakeDriver,
    add_held_volume,
    add_volume,
    claim,
    create_request,
    mark_deleting,
    reload,
    usage,
)


async def test_delete_removes_file_row_metadata_and_gives_quota_back(
    db: Database, tmp_path: Path
) -> None:
    driver = FileDriver(BackendSettings(name="file-1"), tmp_path)
    await driver.do_setup()
    volume = await add_volume(db, size=5, status=VolumeStatus.DELETING, metadata={"k": "v"})
    await claim(db, volume.id, VolumeStatus.DELETING)
    await driver.create_volume(volume.id, 5)
    before = await usage(db)
    assert await run_delete(db, driver, volume.id, WORKER)
    assert not driver.path(volume.id).exists()
    assert await reload(db, volume.id) is None
    async with db.session() as session:
        assert await session.get(VolumeMetadata, (volume.id, "k")) is None
    assert await usage(db) == before - 5
    # Deleting again: the image and row are already gone, which is success.
    assert await run_delete(db, driver, volume.id, WORKER)
    assert await usage(db) == before - 5


async def test_quota_not_held_is_not_given_back_twice(db: Database, driver: FakeDriver) -> None:
    volume = await add_held_volume(db, size=2)
    assert await store.mark_error(db, volume.id, "failed", WORKER)
    before = await usage(db)
    await mark_deleting(db, volume.id)
    await claim(db, volume.id, VolumeStatus.DELETING)
    assert await run_delete(db, driver, volume.id, WORKER)
    assert await reload(db, volume.id) is None
    assert await usage(db) == before


async def test_driver_failure_sets_error_deleting(db: Database, driver: FakeDriver) -> None:
    driver.fail_delete = "busy"
    volume = await add_held_volume(db, status=VolumeStatus.DELETING)
    before = await usage(db)
    assert not await run_delete(db, driver, volume.id, WORKER)
    row = await reload(db, volume.id)
    assert row is not None and row.status == VolumeStatus.ERROR_DELETING
    assert (row.worker, row.lease_expires_at) == (None, None)
    assert row.quota_held
    assert await usage(db) == before


async def test_a_worker_that_does_not_hold_the_volume_keeps_its_row(
    db: Database, driver: FakeDriver
) -> None:
    volume = await add_volume(db, size=2, status=VolumeStatus.DELETING)
    await claim(db, volume.id, VolumeStatus.DELETING, worker=OTHER_WORKER)
    before = await usage(db)
    await run_delete(db, driver, volume.id, WORKER)
    row = await reload(db, volume.id)
    assert row is not None
    assert (row.status, row.worker) == (VolumeStatus.DELETING, OTHER_WORKER)
    assert row.quota_held
    assert await usage(db) == before


async def test_manager_delete_waits_for_a_running_create(
    manager: Manager, db: Database, driver: FakeDriver
) -> None:
    volume = await add_volume(db, size=3)
    before = await usage(db)
    release = asyncio.Event()
    original = driver.create_volume

    async def slow_create(volume_id: str, size_gb: int) -> None:
        await release.wait()
        await original(volume_id, size_gb)

    driver.create_volume = slow_create  # type: ignore[method-assign]
    await manager.accept_create(create_request(volume))
    await asyncio.sleep(0.05)
    assert manager.busy == 1
    await mark_deleting(db, volume.id)  # the api's delete, while the create runs
    await manager.accept_delete(volume.id)
    await asyncio.sleep(0.05)
    row = await reload(db, volume.id)
    assert row is not None and row.worker == WORKER  # the delete waits for the create
    assert driver.deleted == []
    release.set()
    await manager.join()
    assert await reload(db, volume.id) is None
    assert driver.volumes == {}
    assert await usage(db) == before - 3  # given back once, by the delete
    assert await usage(db, "volumes") == 0
