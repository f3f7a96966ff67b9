"""The migration flow (``services.volume.migrate_flow``) on a real database and two real file
drivers (source ``file-1``, destination ``file-2``), the data copied through the source
side's chunk reader: a migration moves the data, the row (host, type, ``success``) and the
per-type quota; each failure undoes what was done (the destination image removed, the volume
back where it was with its old type, ``migration_status`` ``error``, the reservations rolled
back, the source intact); a restarted destination ends an interrupted migration as
``error``."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlmodel import select

from cindermesh.db import migrations_state, volumes
from cindermesh.db.engine import Database
from cindermesh.db.models import (
    DEFAULT_VOLUME_TYPE,
    QuotaUsage,
    Reservation,
    Volume,
    VolumeStatus,
    VolumeType,
)
from cindermesh.settings import BackendSettings, QuotaSettings
from services.volume import data_copy
from services.volume.domain import pool_host
from services.volume.drivers.base import BlockStorageDriver
from services.volume.drivers.file import FileDriver
from services.volume.errors import DriverError
from services.volume.migrate_flow import MigrationServices, MigrationWork, run_migrate

from .helpers import HOST_NAME, LEASE, PROJECT, add_volume, reload

GIB = 1024**3
DESTINATION_BACKEND = f"{HOST_NAME}@file-2"
DESTINATION = pool_host(HOST_NAME, "file-2")
PATTERN = b"cindermesh-migration" * 1000
OFFSET = 5 * 1024 * 1024 + 17


@pytest.fixture
async def source(tmp_path: Path) -> FileDriver:
    driver = FileDriver(BackendSettings(name="file-1"), tmp_path / "images")
    await driver.do_setup()
    return driver


@pytest.fixture
async def destination(tmp_path: Path) -> FileDriver:
    driver = FileDriver(BackendSettings(name="file-2"), tmp_path / "images")
    await driver.do_setup()
    return driver


class Copier:
    """The destination's copy, reading the source's chunks in process (no gRPC)."""

    def __init__(self, source: FileDriver) -> None:
        self.source = source
        self.fail_after: int | None = None
        self.deleted: list[str] = []

    async def copy(
        self, address: str, driver: BlockStorageDriver, volume_id: str, size_bytes: int
    ) -> data_copy.CopyResult:
        written = chunks = 0
        async for chunk in data_copy.read_chunks(self.source, volume_id, size_bytes):
            if self.fail_after is not None and chunks >= self.fail_after:
                raise data_copy.SourceUnreachable("the source went away")
            if chunk.data:
                await driver.write_volume_data(volume_id, chunk.offset, chunk.data)
                written += len(chunk.data)
            chunks += 1
        return data_copy.CopyResult(size_bytes, written, chunks)

    async def delete_source(self, address: str, volume_id: str) -> None:
        self.deleted.append(volume_id)
        await self.source.delete_volume(volume_id)


async def _locate(db: Database, host: str) -> str | None:
    return "127.0.0.1:1"


@pytest.fixture
def copier(source: FileDriver) -> Copier:
    return Copier(source)


@pytest.fixture
def services(db: Database, destination: FileDriver, copier: Copier) -> MigrationServices:
    return MigrationServices(
        db=db,
        driver=destination,
        worker=f"{DESTINATION_BACKEND}/w1",
        backend_host=DESTINATION_BACKEND,
        service_uuid="service-2",
        locate=_locate,
        copy=copier.copy,
        delete_source=copier.delete_source,
    )


async def _gold(db: Database) -> VolumeType:
    async with db.session() as session:
        gold = VolumeType(name="gold")
        session.add(gold)
    async with db.read() as session:
        found = (await session.exec(select(VolumeType).where(VolumeType.name == "gold"))).one()
    return found


async def _usages(db: Database) -> dict[str, tuple[int, int]]:
    async with db.read() as session:
        rows = await session.exec(select(QuotaUsage).where(QuotaUsage.project_id == PROJECT))
        return {row.resource: (row.in_use, row.reserved) for row in rows}


async def _reservations(db: Database) -> int:
    async with db.read() as session:
        return len(list(await session.exec(select(Reservation))))


async def _migrating(db: Database, source: FileDriver, services: MigrationServices) -> Volume:
    """An available 1 GiB volume on file-1 with PATTERN at OFFSET, marked by the api for a
    migration to file-2 and claimed by the destination's worker."""
    volume = await add_volume(db, size=1, status=VolumeStatus.AVAILABLE)
    await source.create_volume(volume.id, 1)
    await source.write_volume_data(volume.id, OFFSET, PATTERN)
    gold = await _gold(db)
    async with db.session() as session:
        locked = await volumes.locked(session, volume.id)
        assert locked is not None
        assert await migrations_state.start(session, locked, DESTINATION, gold, QuotaSettings())
    async with db.session() as session:
        claimed = await migrations_state.claim(
            session, volume.id, DESTINATION_BACKEND, services.worker, LEASE
        )
    assert claimed is not None and claimed.migration_status == "migrating"
    return volume


async def test_migration_moves_data_row_and_type_quota(
    db: Database,
    source: FileDriver,
    destination: FileDriver,
    services: MigrationServices,
    copier: Copier,
) -> None:
    volume = await _migrating(db, source, services)
    before = await _usages(db)
    state = await run_migrate(services, volume.id)
    assert state.completed and not state.errored
    assert state.copied is not None and state.copied.written_bytes < GIB  # zeros not sent
    row = await reload(db, volume.id)
    assert row is not None
    assert (row.status, row.migration_status, row.host) == ("available", "success", DESTINATION)
    assert row.service_uuid == "service-2" and row.worker is None
    assert row.migration_host is None and row.migration_type_id is None
    assert row.volume_type_id != volume.volume_type_id
    assert await destination.read_volume_data(volume.id, OFFSET, len(PATTERN)) == PATTERN
    assert destination.path(volume.id).stat().st_size == GIB
    assert copier.deleted == [volume.id] and not source.path(volume.id).exists()
    after = await _usages(db)
    assert after["gigabytes"] == before["gigabytes"] == (1, 0)
    assert after["volumes"] == before["volumes"] == (1, 0)
    assert after[f"gigabytes_{DEFAULT_VOLUME_TYPE}"] == (0, 0)
    assert after["gigabytes_gold"] == (1, 0) and after["volumes_gold"] == (1, 0)
    assert await _reservations(db) == 0


async def _assert_undone(
    db: Database, volume: Volume, source: FileDriver, destination: FileDriver
) -> None:
    row = await reload(db, volume.id)
    assert row is not None
    assert (row.status, row.migration_status, row.host) == ("available", "error", volume.host)
    assert row.volume_type_id == volume.volume_type_id and row.worker is None
    assert row.migration_host is None and row.pending_reservations == ""
    assert not destination.path(volume.id).exists()
    assert await source.read_volume_data(volume.id, OFFSET, len(PATTERN)) == PATTERN
    usages = await _usages(db)
    assert usages["gigabytes_gold"] == (0, 0) and usages["volumes_gold"] == (0, 0)
    assert usages[f"gigabytes_{DEFAULT_VOLUME_TYPE}"] == (1, 0)
    assert await _reservations(db) == 0


async def test_copy_failure_undoes_everything(
    db: Database,
    source: FileDriver,
    destination: FileDriver,
    services: MigrationServices,
    copier: Copier,
) -> None:
    volume = await _migrating(db, source, services)
    copier.fail_after = 0
    state = await run_migrate(services, volume.id)
    assert state.errored and not state.completed
    assert isinstance(state.error, data_copy.SourceUnreachable)
    await _assert_undone(db, volume, source, destination)
    assert copier.deleted == []


async def test_create_failure_undoes_the_row(
    db: Database,
    source: FileDriver,
    destination: FileDriver,
    services: MigrationServices,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    volume = await _migrating(db, source, services)

    async def refuse(volume_id: str, size_gb: int) -> None:
        raise DriverError("disk full")

    monkeypatch.setattr(destination, "create_volume", refuse)
    state = await run_migrate(services, volume.id)
    assert state.errored and isinstance(state.error, DriverError)
    await _assert_undone(db, volume, source, destination)


async def test_lost_row_at_completion_removes_the_destination_image(
    db: Database,
    source: FileDriver,
    destination: FileDriver,
    services: MigrationServices,
    copier: Copier,
) -> None:
    """An admin reset the status meanwhile: the completion finds the row changed, the copy is
    removed and the row is left as the admin set it."""
    volume = await _migrating(db, source, services)
    original = copier.copy

    async def copy_then_reset(
        address: str, driver: BlockStorageDriver, volume_id: str, size_bytes: int
    ) -> data_copy.CopyResult:
        result = await original(address, driver, volume_id, size_bytes)
        async with db.session() as session:
            row = await volumes.locked(session, volume_id)
            assert row is not None
            row.status, row.migration_status, row.worker = "available", None, None
        return result

    copier.copy = copy_then_reset  # type: ignore[method-assign]
    services = MigrationServices(
        db=db,
        driver=destination,
        worker=services.worker,
        backend_host=DESTINATION_BACKEND,
        locate=_locate,
        copy=copy_then_reset,
        delete_source=copier.delete_source,
    )
    state = await run_migrate(services, volume.id)
    assert not state.completed and not state.errored
    row = await reload(db, volume.id)
    assert row is not None and (row.status, row.host) == ("available", volume.host)
    assert not destination.path(volume.id).exists()
    assert source.path(volume.id).exists() and copier.deleted == []


async def test_recovery_ends_an_interrupted_migration_as_error(
    db: Database, source: FileDriver, destination: FileDriver, services: MigrationServices
) -> None:
    volume = await _migrating(db, source, services)
    await destination.create_volume(volume.id, 1)  # the copy the previous run left
    restarted = MigrationServices(
        db=db,
        driver=destination,
        worker=f"{DESTINATION_BACKEND}/w2",
        backend_host=DESTINATION_BACKEND,
    )

    def spawn(key: str, work: object) -> None:
        raise AssertionError("recovery runs nothing")

    await MigrationWork(restarted, LEASE, {}, spawn, lambda: None).recover()
    row = await reload(db, volume.id)
    assert row is not None
    assert (row.status, row.migration_status, row.host) == ("available", "error", volume.host)
    assert await _reservations(db) == 0
    assert await source.read_volume_data(volume.id, OFFSET, len(PATTERN)) == PATTERN


async def test_start_refuses_a_volume_that_changed(db: Database, source: FileDriver) -> None:
    volume = await add_volume(db, size=1, status=VolumeStatus.IN_USE)
    gold = await _gold(db)
    async with db.session() as session:
        locked = await volumes.locked(session, volume.id)
        assert locked is not None
        locked_copy = Volume.model_validate(locked.model_dump())
    locked_copy.status = VolumeStatus.AVAILABLE
    async with db.session() as session:
        started = await migrations_state.start(
            session, locked_copy, DESTINATION, gold, QuotaSettings()
        )
    assert not started
    assert await _reservations(db) == 0
