"""A volume's placement attempts (``cindermesh.db.placements``) with a real database: kept
oldest first, at most the last ten, gone with their volume."""

from __future__ import annotations

import dataclasses
import datetime as dt

from sqlalchemy import delete, func
from sqlmodel import col, select

from cindermesh.db import placements, volumes
from cindermesh.db.engine import Database
from cindermesh.db.models import Volume, VolumePlacement, VolumeStatus
from cindermesh.placement import FilterOutcome, PlacementAttempt

from .conftest import add_volume

POOL = "node1@file-1#file-1"


def attempt(number: int, **changes: object) -> PlacementAttempt:
    base = PlacementAttempt(
        attempt=number,
        decided_at=dt.datetime(2026, 12, 2, 20, 0, number % 60),
        scheduler="127.0.0.1:18777",
        request={"size_gb": 1, "availability_zone": "nova", "extra_specs": {}},
        disabled=(),
        filters=(FilterOutcome("CapacityFilter", 1, (POOL,), ()),),
        weighed=(),
        chosen=POOL,
        result="placed",
        reason="",
        last_filter=None,
        retry_hosts=(),
        last_error="",
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


async def rows(db: Database, volume_id: str | None = None) -> int:
    query = select(func.count()).select_from(VolumePlacement)
    if volume_id is not None:
        query = query.where(col(VolumePlacement.volume_id) == volume_id)
    async with db.read() as session:
        return int((await session.exec(query)).one())


async def test_attempts_read_back_oldest_first(db: Database) -> None:
    await add_volume(db, "v1")
    first = attempt(1, chosen=None, result="no_valid_backend", reason="No valid backend")
    second = attempt(2, retry_hosts=(POOL,), last_error="refused")
    async with db.session() as session:
        await placements.record(session, "v1", first)
    async with db.session() as session:
        await placements.record(session, "v1", second)
    async with db.read() as session:
        assert await placements.attempts_of(session, "v1") == [first, second]
        assert await placements.attempts_of(session, "v2") == []


async def test_recorded_with_the_callers_transaction(db: Database) -> None:
    await add_volume(db, "v1")
    try:
        async with db.session() as session:
            await placements.record(session, "v1", attempt(1))
            raise RuntimeError("the placement failed")
    except RuntimeError:
        pass
    assert await rows(db) == 0


async def test_only_the_last_ten_are_kept_per_volume(db: Database) -> None:
    await add_volume(db, "v1")
    await add_volume(db, "v2")
    async with db.session() as session:
        await placements.record(session, "v2", attempt(1))
    for number in range(1, 14):
        async with db.session() as session:
            await placements.record(session, "v1", attempt(number))
    assert await rows(db, "v1") == placements.KEPT_ATTEMPTS == 10
    assert await rows(db, "v2") == 1
    async with db.read() as session:
        kept = await placements.attempts_of(session, "v1")
    assert [a.attempt for a in kept] == list(range(4, 14))


async def test_many_in_one_transaction_are_trimmed_too(db: Database) -> None:
    await add_volume(db, "v1")
    async with db.session() as session:
        for number in range(1, 16):
            await placements.record(session, "v1", attempt(number))
    async with db.read() as session:
        kept = await placements.attempts_of(session, "v1")
    assert [a.attempt for a in kept] == list(range(6, 16))


async def test_an_unreadable_row_is_skipped(db: Database) -> None:
    await add_volume(db, "v1")
    async with db.session() as session:
        session.add(VolumePlacement(volume_id="v1", attempt=1, decision="{}"))
        await placements.record(session, "v1", attempt(2))
    async with db.read() as session:
        assert [a.attempt for a in await placements.attempts_of(session, "v1")] == [2]


async def test_a_destroyed_volume_takes_its_placements(db: Database) -> None:
    await add_volume(db, "v1")
    await add_volume(db, "v2")
    async with db.session() as session:
        await placements.record(session, "v1", attempt(1))
        await placements.record(session, "v2", attempt(1))
    async with db.session() as session:
        assert await volumes.destroy(session, "v1", volumes.Expect(status=VolumeStatus.CREATING))
    assert (await rows(db, "v1"), await rows(db, "v2")) == (0, 1)


async def test_the_foreign_key_cascades(db: Database) -> None:
    """A volume row deleted by other means still takes its placements (ON DELETE CASCADE)."""
    await add_volume(db, "v1")
    async with db.session() as session:
        await placements.record(session, "v1", attempt(1))
    async with db.session() as session:
        await session.exec(delete(Volume).where(col(Volume.id) == "v1"))
    assert await rows(db) == 0
