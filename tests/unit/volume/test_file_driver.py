from __future__ import annotations

from pathlib import Path

import pytest

from cindermesh.settings import BackendSettings, DriverKind, Settings
from services.volume.drivers import create_driver
from services.volume.drivers.file import GIB, FileDriver
from services.volume.errors import DriverError, DriverNotInitialized, UnsupportedDriver

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
    with pytest.raises(UnsupportedDriver, match="not implemented"):
        create_driver(settings, rbd)
