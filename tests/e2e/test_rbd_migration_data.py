"""The RBD driver's data methods a migration uses (``read_volume_data``,
``write_volume_data``) against a real Ceph (the ``ceph`` fixture), and a volume's data copied
chunk by chunk (``services.volume.data_copy.read_chunks``) from a file backend to RBD and back:
what is read back is what was written, zeros stay unwritten."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from cindermesh.settings import BackendSettings, DriverKind
from services.volume import data_copy
from services.volume.drivers.base import BlockStorageDriver
from services.volume.drivers.file import FileDriver
from services.volume.drivers.rbd import GIB, RbdDriver
from services.volume.errors import DriverError
from tests.e2e.ceph import Ceph

PATTERN = b"rbd-migration" * 10000
OFFSET = 7 * 1024 * 1024 + 3


@pytest.fixture
async def rbd(ceph: Ceph) -> AsyncIterator[RbdDriver]:
    driver = RbdDriver(
        BackendSettings(
            name="rbd-migrate",
            driver=DriverKind.RBD,
            rbd_ceph_conf=str(ceph.conf),
            rbd_keyring=str(ceph.keyring),
            rbd_user=ceph.client,
            rbd_pool=ceph.pool,
            rados_connect_timeout=5.0,
            report_interval=0.0,
        )
    )
    await driver.do_setup()
    yield driver
    await driver.close()


@pytest.fixture
async def files(tmp_path: Path) -> FileDriver:
    driver = FileDriver(BackendSettings(name="file-1"), tmp_path)
    await driver.do_setup()
    return driver


async def _copy(source: BlockStorageDriver, target: BlockStorageDriver, volume_id: str) -> int:
    written = 0
    async for chunk in data_copy.read_chunks(source, volume_id, GIB):
        if chunk.data:
            await target.write_volume_data(volume_id, chunk.offset, chunk.data)
            written += len(chunk.data)
    return written


async def test_rbd_reads_and_writes_ranges(rbd: RbdDriver) -> None:
    volume_id = uuid.uuid4().hex[:12]
    await rbd.create_volume(volume_id, 1)
    try:
        assert await rbd.read_volume_data(volume_id, OFFSET, 16) == bytes(16)
        await rbd.write_volume_data(volume_id, OFFSET, PATTERN)
        assert await rbd.read_volume_data(volume_id, OFFSET, len(PATTERN)) == PATTERN
        assert await rbd.read_volume_data(volume_id, GIB - 4, 100) == bytes(4)
        assert await rbd.read_volume_data(volume_id, GIB, 100) == b""
        with pytest.raises(DriverError):
            await rbd.write_volume_data(volume_id, GIB - 1, b"xy")
    finally:
        await rbd.delete_volume(volume_id)


async def test_data_copied_file_to_rbd_and_back(rbd: RbdDriver, files: FileDriver) -> None:
    volume_id = uuid.uuid4().hex[:12]
    await files.create_volume(volume_id, 1)
    await files.write_volume_data(volume_id, OFFSET, PATTERN)
    await rbd.create_volume(volume_id, 1)
    try:
        written = await _copy(files, rbd, volume_id)
        assert 0 < written <= 2 * data_copy.CHUNK_SIZE  # only the chunks with data
        assert await rbd.read_volume_data(volume_id, OFFSET, len(PATTERN)) == PATTERN
        await files.delete_volume(volume_id)
        await files.create_volume(volume_id, 1)
        assert await _copy(rbd, files, volume_id) == written
        assert await files.read_volume_data(volume_id, OFFSET, len(PATTERN)) == PATTERN
    finally:
        await rbd.delete_volume(volume_id)
