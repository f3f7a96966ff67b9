"""Quota accounting under concurrency, on each engine: the first uses of a project's quota
racing (both insert its usage rows), reservations expired by several schedulers at once or
while the work that made them commits."""

from __future__ import annotations

import asyncio
import datetime as dt

from sqlmodel import select

from cindermesh.db import quota
from cindermesh.db.engine import Database
from cindermesh.db.models import QuotaUsage, Reservation, utcnow
from cindermesh.settings import QuotaSettings

DELTAS = quota.volume_deltas(1, "__DEFAULT__")
QUOTAS = QuotaSettings(volumes=10)


async def usage(db: Database, project_id: str) -> dict[str, tuple[int, int]]:
    async with db.read() as session:
        rows = await session.exec(select(QuotaUsage).where(QuotaUsage.project_id == project_id))
        return {u.resource: (u.in_use, u.reserved) for u in rows}


async def reservations(db: Database) -> list[str]:
    async with db.read() as session:
        return list(await session.exec(select(Reservation.id)))


async def test_two_first_reservations_of_a_project_both_count(db: Database, peer: Database) -> None:
    """Neither finds the project's usage rows: both insert them, neither fails, both count."""
    first_holds = asyncio.Event()
    second_started = asyncio.Event()

    async def first() -> None:
        async with db.session() as session:
            await quota.reserve(session, "fresh", DELTAS, QUOTAS)
            first_holds.set()
            await second_started.wait()
            await asyncio.sleep(0.2)  # the second is at the rows the first inserted

    async def second() -> None:
        await first_holds.wait()
        second_started.set()
        async with peer.session() as session:
            await quota.reserve(session, "fresh", DELTAS, QUOTAS)

    await asyncio.gather(first(), second())
    assert await usage(db, "fresh") == {resource: (0, 2) for resource in DELTAS}
    assert len(await reservations(db)) == 2 * len(DELTAS)


async def test_many_first_reservations_against_a_limit(db: Database, peer: Database) -> None:
    """16 first reservations of one project at once against volumes=10: exactly 10 are
    made, the rest refused, and the usage is exact."""
    engines = [db, peer]

    async def one(index: int) -> bool:
        try:
            async with engines[index % 2].session() as session:
                await quota.reserve(session, "burst", DELTAS, QUOTAS)
        except quota.QuotaExceeded:
            return False
        return True

    made = await asyncio.gather(*(one(i) for i in range(16)))
    assert made.count(True) == 10
    assert (await usage(db, "burst"))["volumes"] == (0, 10)


async def reserve_old(db: Database, project_id: str, age: float) -> list[str]:
    async with db.session() as session:
        ids = await quota.reserve(session, project_id, DELTAS, QUOTAS)
    async with db.session() as session:
        for reservation in await session.exec(select(Reservation)):
            reservation.created_at = utcnow() - dt.timedelta(seconds=age)
    return ids


async def test_old_reservations_expire_and_young_ones_stay(db: Database) -> None:
    await reserve_old(db, "p1", age=100)
    async with db.session() as session:
        young = await quota.reserve(session, "p1", DELTAS, QUOTAS)
    async with db.session() as session:
        expired = await quota.expire_reservations(session, utcnow() - dt.timedelta(seconds=50))
    assert expired == len(DELTAS)
    assert sorted(await reservations(db)) == sorted(young)
    assert (await usage(db, "p1"))["volumes"] == (0, 1)


async def test_replicas_expiring_at_once_roll_each_reservation_back_once(
    db: Database, peer: Database
) -> None:
    for project in ("p1", "p2", "p3"):
        await reserve_old(db, project, age=100)
    before = utcnow() - dt.timedelta(seconds=50)

    async def expire(database: Database) -> int:
        async with database.session() as session:
            return await quota.expire_reservations(session, before)

    counts = await asyncio.gather(expire(db), expire(peer), expire(db), expire(peer))
    assert sum(counts) == 3 * len(DELTAS)
    assert await reservations(db) == []
    for project in ("p1", "p2", "p3"):
        assert await usage(db, project) == {resource: (0, 0) for resource in DELTAS}


async def test_an_expiry_racing_the_commit_counts_the_reservation_once(
    db: Database, peer: Database
) -> None:
    ids = await reserve_old(db, "p1", age=100)
    before = utcnow() - dt.timedelta(seconds=50)

    async def commit() -> None:
        async with db.session() as session:
            await quota.commit(session, ids)

    async def expire() -> int:
        async with peer.session() as session:
            return await quota.expire_reservations(session, before)

    _, expired = await asyncio.gather(commit(), expire())
    in_use, reserved = (await usage(db, "p1"))["volumes"]
    assert reserved == 0
    # Either the commit came first (in use, nothing left to expire) or the expiry did.
    assert (in_use, expired) in {(1, 0), (0, len(DELTAS))}
    assert await reservations(db) == []
