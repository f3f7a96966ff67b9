from __future__ import annotations

from pathlib import Path

import pytest

from cindermesh.settings import BackendSettings, DriverKind, Settings
from services.volume.drivers import create_driver
from services.volume.drivers.base import BlockStorageDriver, SnapshotRef, SourceVolumeRef
from services.volume.drivers.file import GIB, FileDriver
from services.volume.drivers.rbd import RbdDriver
from services.volume.errors import DriverError, DriverNotInitialized

BACKEND = BackendSettings(name="file-1", total_capacity_gb=50)


async def _driver(tmp_path: Path) -> FileDriver:
    driver = FileDriver(BACKEND, tmp_path)
    await driver.do_setup()
    return driver


async def test_create_makes_a_sparse_file_of_the_volume_size(tmp_path: Path) -> None:
    driver = await _driver(tmp_path)
    await driver.create_volume("vol-1", 10)
    path = tmp_path / "volumes" / "file-1" / "volume-vol-1"
    st = path.stat()
    assert st.st_size == 10 * GIB
    assert st.st_blocks * 512 < 1024 * 1024  # sparse: no data written
    capacity = await driver.get_capacity()
    assert capacity.allocated_capacity_gb == 10
    assert capacity.total_capacity_gb == 50
    assert capacity.free_capacity_gb == 50
    assert capacity.thin_provisioning_support
    assert capacity.total_volumes == 1


async def test_create_is_idempotent(tmp_path: Path) -> None:
    driver = await _driver(tmp_path)
    await driver.create_volume("vol-1", 3)
    await driver.create_volume("vol-1", 3)
    assert (await driver.get_capacity()).allocated_capacity_gb == 3


async def test_delete_removes_the_file_and_already_gone_succeeds(tmp_path: Path) -> None:
    driver = await _driver(tmp_path)
    await driver.create_volume("vol-1", 1)
    await driver.delete_volume("vol-1")
    assert not driver.path("vol-1").exists()
    await driver.delete_volume("vol-1")
    await driver.delete_volume("never-created")
    assert (await driver.get_capacity()).allocated_capacity_gb == 0


async def test_setup_counts_existing_volumes(tmp_path: Path) -> None:
    first = await _driver(tmp_path)
    await first.create_volume("a", 2)
    await first.create_volume("b", 5)
    second = await _driver(tmp_path)
    capacity = await second.get_capacity()
    assert capacity.allocated_capacity_gb == 7
    assert capacity.total_volumes == 2


async def test_refuses_ids_that_are_not_plain_names(tmp_path: Path) -> None:
    driver = await _driver(tmp_path)
    with pytest.raises(DriverError):
        await driver.create_volume("../escape", 1)


async def test_calls_before_setup_fail_clearly(tmp_path: Path) -> None:
    with pytest.raises(DriverNotInitialized):
        await FileDriver(BACKEND, tmp_path).create_volume("vol-1", 1)


def test_driver_is_chosen_by_kind(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    assert isinstance(create_driver(settings, BACKEND), FileDriver)
    rbd = BackendSettings(name="rbd-1", driver=DriverKind.RBD)
    assert isinstance(create_driver(settings, rbd), RbdDriver)


def _write(path: Path, offset: int, data: bytes) -> None:
    with open(path, "r+b") as f:
        f.seek(offset)
        f.write(data)


def _read(path: Path, offset: int, size: int) -> bytes:
    with open(path, "rb") as f:
        f.seek(offset)
        return f.read(size)


async def test_snapshots_clones_extend_and_revert_are_sparse_copies(tmp_path: Path) -> None:
    driver: BlockStorageDriver = await _driver(tmp_path)
    assert isinstance(driver, FileDriver)
    await driver.create_volume("src", 2)
    source = driver.path("src")
    _write(source, GIB, b"before")
    snap = SnapshotRef(id="snap-1", volume_id="src", volume_size_gb=2)
    await driver.create_snapshot(snap)
    await driver.create_snapshot(snap)  # again: success
    _write(source, GIB, b"after!")

    await driver.create_volume_from_snapshot("from-snap", 3, snap)
    copy = driver.path("from-snap")
    assert copy.stat().st_size == 3 * GIB
    assert _read(copy, GIB, 6) == b"before"
    assert copy.stat().st_blocks * 512 < 1024 * 1024  # holes stay holes

    await driver.create_cloned_volume("clone", 2, SourceVolumeRef(id="src", size_gb=2))
    assert _read(driver.path("clone"), GIB, 6) == b"after!"

    await driver.extend_volume("clone", 4)
    assert driver.path("clone").stat().st_size == 4 * GIB
    with pytest.raises(DriverError, match="shrink"):
        await driver.extend_volume("clone", 1)

    await driver.revert_to_snapshot("src", snap)
    assert _read(source, GIB, 6) == b"before"
    assert source.stat().st_size == 2 * GIB

    capacity = await driver.get_capacity()
    assert capacity.allocated_capacity_gb == 2 + 3 + 4
    assert sorted(await driver.list_volumes()) == ["clone", "from-snap", "src"]

    await driver.delete_snapshot(snap)
    await driver.delete_snapshot(snap)  # already gone: success
    assert not driver.snapshot_path(snap).exists()


async def test_connection_is_the_local_path(tmp_path: Path) -> None:
    driver = await _driver(tmp_path)
    await driver.create_volume("vol-1", 1)
    info = await driver.initialize_connection("vol-1", {"host": "h"})
    assert info.as_dict() == {
        "driver_volume_type": "local",
        "data": {"device_path": str(driver.path("vol-1")), "volume_id": "vol-1"},
    }
    await driver.terminate_connection("vol-1")
    with pytest.raises(DriverError):
        await driver.initialize_connection("missing")
