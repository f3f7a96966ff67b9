from __future__ import annotations

from pathlib import Path

from cindermesh.db.engine import Database
from cindermesh.db.models import VolumeMetadata, VolumeStatus
from services.volume.delete import run_delete
from services.volume.drivers.file import FileDriver
from services.volume.manager import Manager

from .helpers import FakeDriver, add_volume, reload, usage


async def test_delete_removes_file_row_metadata_and_gives_quota_back(
    db: Database, tmp_path: Path
) -> None:
    from cindermesh.settings import BackendSettings

    driver = FileDriver(BackendSettings(name="file-1"), tmp_path)
    await driver.do_setup()
    volume = await add_volume(db, size=5, status=VolumeStatus.DELETING, metadata={"k": "v"})
    await driver.create_volume(volume.id, 5)
    before = await usage(db)
    assert await run_delete(db, driver, volume.id)
    assert not driver.path(volume.id).exists()
    assert await reload(db, volume.id) is None
    async with db.session() as session:
        assert await session.get(VolumeMetadata, (volume.id, "k")) is None
    assert await usage(db) == before - 5
    # Deleting again: the image and row are already gone, which is success.
    assert await run_delete(db, driver, volume.id)
    assert await usage(db) == before - 5


async def test_quota_not_held_is_not_given_back_twice(db: Database, driver: FakeDriver) -> None:
    from services.volume import store

    volume = await add_volume(db, size=2)
    assert await store.mark_error(db, volume.id, "failed")
    before = await usage(db)
    await store.set_status(db, volume.id, VolumeStatus.ERROR, VolumeStatus.DELETING)
    assert await run_delete(db, driver, volume.id)
    assert await usage(db) == before


async def test_driver_failure_sets_error_deleting(db: Database, driver: FakeDriver) -> None:
    driver.fail_delete = "busy"
    volume = await add_volume(db, status=VolumeStatus.DELETING)
    before = await usage(db)
    assert not await run_delete(db, driver, volume.id)
    row = await reload(db, volume.id)
    assert row is not None and row.status == VolumeStatus.ERROR_DELETING
    assert await usage(db) == before


async def test_manager_delete_waits_for_a_running_create(
    manager: Manager, db: Database, driver: FakeDriver
) -> None:
    from .helpers import create_request

    volume = await add_volume(db)
    await manager.accept_create(create_request(volume))
    await manager.join()
    from services.volume import store

    await store.set_status(db, volume.id, VolumeStatus.AVAILABLE, VolumeStatus.DELETING)
    await manager.accept_delete(volume.id)
    await manager.join()
    assert await reload(db, volume.id) is None
    assert driver.volumes == {}
