"""A real database (as the services open it: SQLite, then PostgreSQL) with volumes to hang
rows on."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlmodel import select

from cindermesh.db.engine import Database, open_database
from cindermesh.db.models import DEFAULT_VOLUME_TYPE, Volume, VolumeType
from cindermesh.settings import Settings


@pytest.fixture
async def db(tmp_path: Path, migrated_database_url: str) -> AsyncIterator[Database]:
    database = open_database(Settings(data_dir=tmp_path, database_url=migrated_database_url))
    await database.create_schema()
    yield database
    await database.close()


async def add_volume(db: Database, volume_id: str, project_id: str = "p1") -> None:
    """A volume waiting to be placed, its quota not counted (nothing to give back)."""
    async with db.session() as session:
        default = (
            await session.exec(select(VolumeType).where(VolumeType.name == DEFAULT_VOLUME_TYPE))
        ).one()
        session.add(
            Volume(
                id=volume_id,
                project_id=project_id,
                user_id="u1",
                size=1,
                availability_zone="nova",
                volume_type_id=default.id,
                quota_held=False,
            )
        )


@pytest.fixture
async def peer(db: Database, tmp_path: Path, migrated_database_url: str) -> AsyncIterator[Database]:
    """A second engine on the same database: another process (its own connections)."""
    database = open_database(Settings(data_dir=tmp_path, database_url=migrated_database_url))
    yield database
    await database.close()
