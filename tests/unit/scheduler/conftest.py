"""A real SQLite database with one volume waiting to be scheduled."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlmodel import select

from cindermesh.db.engine import Database, open_database
from cindermesh.db.models import DEFAULT_VOLUME_TYPE, QuotaUsage, Service, Volume, VolumeType
from cindermesh.settings import Settings

SERVICE_UUID = "00000000-0000-0000-0000-00000000beef"
#: Usage before the test volume fails: it holds 1 volume / 10 GB of it.
USAGE = {
    "volumes": 3,
    "gigabytes": 30,
    f"volumes_{DEFAULT_VOLUME_TYPE}": 3,
    f"gigabytes_{DEFAULT_VOLUME_TYPE}": 30,
}


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = open_database(Settings(data_dir=tmp_path))
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


async def get_volume(db: Database, volume_id: str) -> Volume:
    async with db.session() as session:
        row = await session.get(Volume, volume_id)
        assert row is not None
        return row


async def usages(db: Database) -> dict[str, int]:
    async with db.session() as session:
        rows = await session.exec(select(QuotaUsage).where(QuotaUsage.project_id == "p1"))
        return {row.resource: row.in_use for row in rows}
