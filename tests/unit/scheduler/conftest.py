"""A real database (SQLite, then PostgreSQL) with one volume waiting to be scheduled."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlmodel import select

from cindermesh.db.engine import Database, open_database
from cindermesh.db.models import (
    DEFAULT_VOLUME_TYPE,
    QuotaUsage,
    Service,
    Volume,
    VolumeType,
    utcnow,
)
from cindermesh.db.quota import volume_deltas
from cindermesh.settings import Settings
from tests.unit.rows import ago as ago
from tests.unit.rows import later as later
from tests.unit.rows import update_row as update_row

SERVICE_UUID = "00000000-0000-0000-0000-00000000beef"
#: Usage before the test volume fails: it holds 1 volume / 10 GB of it.
USAGE = {
    "volumes": 3,
    "gigabytes": 30,
    f"volumes_{DEFAULT_VOLUME_TYPE}": 3,
    f"gigabytes_{DEFAULT_VOLUME_TYPE}": 30,
}


@pytest.fixture
async def db(tmp_path: Path, migrated_database_url: str) -> AsyncIterator[Database]:
    database = open_database(Settings(data_dir=tmp_path, database_url=migrated_database_url))
    await database.create_schema()
    async with database.session() as session:
        session.add(
            Service(host="node1@file-1", uuid=SERVICE_UUID, address="x", availability_zone="nova")
        )
        for resource, in_use in USAGE.items():
            session.add(QuotaUsage(project_id="p1", resource=resource, in_use=in_use))
    yield database
    await database.close()


async def add_volume(db: Database, volume_id: str, size: int = 10) -> None:
    async with db.session() as session:
        default = (
            await session.exec(select(VolumeType).where(VolumeType.name == DEFAULT_VOLUME_TYPE))
        ).one()
        session.add(
            Volume(
                id=volume_id,
                project_id="p1",
                user_id="u1",
                size=size,
                availability_zone="nova",
                volume_type_id=default.id,
            )
        )


async def count_usage(db: Database, size: int, volumes: int = 1) -> None:
    """Adds ``volumes`` volumes of ``size`` GB to the project's usage, as the api's create
    would have (``USAGE`` already counts one 10 GB volume)."""
    async with db.session() as session:
        for resource, delta in volume_deltas(size, DEFAULT_VOLUME_TYPE, volumes).items():
            usage = await session.get(QuotaUsage, ("p1", resource))
            assert usage is not None
            usage.in_use += delta


async def get_volume(db: Database, volume_id: str) -> Volume:
    async with db.session() as session:
        row = await session.get(Volume, volume_id, populate_existing=True)
        assert row is not None
        return row


async def handed_back(db: Database, volume_id: str, host: str, reason: str) -> None:
    """What a volume manager's failed create leaves (``store.hand_back``): unplaced, nobody
    holding it, one attempt more and ``host`` tried."""
    row = await get_volume(db, volume_id)
    tried = [h for h in row.tried_hosts.split("\n") if h]
    await update_row(
        db,
        volume_id,
        host=None,
        service_uuid=None,
        worker=None,
        lease_expires_at=None,
        schedule_attempts=row.schedule_attempts + 1,
        tried_hosts="\n".join(tried if host in tried else [*tried, host]),
        last_error=reason,
        updated_at=utcnow(),
    )


async def usages(db: Database) -> dict[str, int]:
    async with db.session() as session:
        rows = await session.exec(select(QuotaUsage).where(QuotaUsage.project_id == "p1"))
        return {row.resource: row.in_use for row in rows}


def released_once() -> dict[str, int]:
    """``USAGE`` once the test volume (1 volume, 10 GB) gave its quota back."""
    return {
        resource: in_use - (1 if resource.startswith("volumes") else 10)
        for resource, in_use in USAGE.items()
    }
