"""A volume's quota is given back exactly once (``cindermesh.db.volumes.give_back_quota``),
whoever races to give it back: usage is seeded first (the project holds more than the one
volume), so a second release would show as a second drop instead of stopping at zero."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from cindermesh.db import quota, volumes
from cindermesh.db.engine import Database, open_database
from cindermesh.db.models import VolumeStatus
from cindermesh.settings import Settings
from services.scheduler import volume_rows
from services.scheduler.spec import VolumeSpec
from services.volume import store

from .conftest import (
    add_volume,
    ago,
    count_usage,
    get_volume,
    released_once,
    update_row,
    usages,
)
from .fakes import A

BACKEND_A = "node1@file-1"
WORKER = f"{BACKEND_A}/w1"


@pytest.fixture
async def other(
    db: Database, tmp_path: Path, migrated_database_url: str
) -> AsyncIterator[Database]:
    """A second connection to the same database: another process."""
    database = open_database(Settings(data_dir=tmp_path, database_url=migrated_database_url))
    yield database
    await database.close()


async def test_racing_releases_give_the_quota_back_once(db: Database, other: Database) -> None:
    await add_volume(db, "v1")

    async def give_back(database: Database) -> bool:
        async with database.session() as session:
            return await volumes.give_back_quota(session, "v1")

    given = await asyncio.gather(*(give_back(d) for d in (db, other) * 4))
    assert sorted(given) == [False] * 7 + [True]
    assert await usages(db) == released_once()
    assert not (await get_volume(db, "v1")).quota_held


async def test_the_schedulers_error_racing_the_managers_releases_once(
    db: Database, other: Database
) -> None:
    """The manager's create fails as its lease lapses; a scheduler's sweep takes the volume
    back and cannot place it. Both paths end in ``error`` and give quota back; one wins."""
    for i in range(10):
        volume_id = f"v{i}"
        if i:
            await count_usage(db, 10)
        await add_volume(db, volume_id)
        await update_row(db, volume_id, host=A, worker=WORKER, lease_expires_at=ago(1))
        spec = VolumeSpec(volume_id=volume_id, project_id="p1", size_gb=10)

        async def scheduler(volume_id: str = volume_id, spec: VolumeSpec = spec) -> bool:
            await volume_rows.take_back(db, volume_id, A, 0, "lapsed", lapsed_only=True)
            return await volume_rows.mark_error(db, spec, "No valid backend was found.")

        by_scheduler, by_manager = await asyncio.gather(
            scheduler(), store.mark_error(other, volume_id, "driver failed", WORKER)
        )
        assert [by_scheduler, by_manager].count(True) == 1
        row = await get_volume(db, volume_id)
        assert (row.status, row.worker, row.quota_held) == (VolumeStatus.ERROR, None, False)
        assert await usages(db) == released_once()


async def test_the_apis_delete_racing_the_schedulers_error_releases_once(
    db: Database, other: Database
) -> None:
    """A volume nobody could place: the api deletes it (it has no host) while a scheduler
    puts it in error. Whichever comes second finds the row changed and gives nothing back."""
    for i in range(10):
        volume_id = f"v{i}"
        if i:
            await count_usage(db, 10)
        await add_volume(db, volume_id)
        spec = VolumeSpec(volume_id=volume_id, project_id="p1", size_gb=10)

        async def api_delete(volume_id: str = volume_id) -> bool:
            unscheduled = volumes.Expect(status=VolumeStatus.CREATING, host=None)
            async with other.session() as session:
                return await volumes.destroy(session, volume_id, unscheduled)

        errored, deleted = await asyncio.gather(
            volume_rows.mark_error(db, spec, "No valid backend was found."), api_delete()
        )
        assert [errored, deleted].count(True) == 1
        assert await usages(db) == released_once()


async def test_a_release_below_zero_is_an_error_not_a_clamp(db: Database) -> None:
    """The check behind the flag: giving back more than is in use raises and changes
    nothing (a clamp at zero would hide a double release of the project's last volume)."""
    async with db.session() as session:
        await quota.release(
            session, "p1", quota.volume_deltas(10, "__DEFAULT__", 3)
        )  # all of USAGE
    assert set((await usages(db)).values()) == {0}
    with pytest.raises(quota.UsageBelowZero, match="gigabytes: in_use 0 < 10"):
        async with db.session() as session:
            await quota.release(session, "p1", quota.volume_deltas(10, "__DEFAULT__"))
    assert set((await usages(db)).values()) == {0}
