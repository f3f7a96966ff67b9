"""The scheduler's sweep (work nobody holds) and housekeeping (expired quota reservations,
old idempotent-create records), on a real database."""

from __future__ import annotations

import asyncio

import pytest
from sqlmodel import col, select

from cindermesh.db import quota
from cindermesh.db.engine import Database
from cindermesh.db.models import (
    DEFAULT_VOLUME_TYPE,
    QuotaUsage,
    Reservation,
    VolumeCreateRequest,
    VolumeStatus,
)
from cindermesh.settings import QuotaSettings, WorkSettings
from services.scheduler.scheduling import Scheduler
from services.scheduler.spec import RetryState
from services.scheduler.sweep import Sweep

from .conftest import USAGE, add_volume, ago, get_volume, later, update_row
from .fakes import A, FakeManagers, make_scheduler, report_a, request

OTHER_WORKER = "node1@file-1/w1"
LAPSED = f"The volume manager of {A} did not create the volume in time"


@pytest.fixture
def managers() -> FakeManagers:
    return FakeManagers()


def sweep_of(
    scheduler: Scheduler,
    db: Database,
    unplaced_grace: float = 10.0,
    reservation_expire: int = 86400,
    idempotency_window: int = 3600,
) -> Sweep:
    work = WorkSettings(
        unplaced_grace=unplaced_grace,
        reservation_expire=reservation_expire,
        idempotency_window=idempotency_window,
    )
    return Sweep(scheduler, db, work)


async def test_sweep_places_an_unplaced_volume_nobody_is_placing(
    db: Database, managers: FakeManagers
) -> None:
    scheduler = make_scheduler(db, managers)
    await add_volume(db, "old")
    await update_row(db, "old", created_at=ago(60))  # its scheduler never got it
    await add_volume(db, "fresh")  # its scheduler may still be placing it
    await add_volume(db, "handed-back")  # a manager's create failed, no scheduler reached
    await update_row(
        db,
        "handed-back",
        created_at=ago(120),
        updated_at=ago(60),
        schedule_attempts=1,
        tried_hosts=A,
        last_error="driver failed",
    )

    assert await sweep_of(scheduler, db).sweep_once() == 2
    await scheduler.close()

    # Both in the zone the api recorded ("nova"): only A passes.
    assert {(s.spec.volume_id, s.host) for s in managers.sent} == {("old", A), ("handed-back", A)}
    handed_back = next(s for s in managers.sent if s.spec.volume_id == "handed-back")
    assert (handed_back.retry.num_attempts, handed_back.retry.hosts) == (1, (A,))
    assert handed_back.retry.last_error == "driver failed"
    assert (handed_back.spec.size_gb, handed_back.spec.availability_zone) == (10, "nova")
    assert handed_back.spec.volume_type.name == DEFAULT_VOLUME_TYPE
    row = await get_volume(db, "old")
    assert (row.host, row.schedule_attempts, row.tried_hosts) == (A, 0, "")
    row = await get_volume(db, "handed-back")
    assert (row.host, row.schedule_attempts, row.tried_hosts) == (A, 1, A)
    row = await get_volume(db, "fresh")
    assert (row.status, row.host) == (VolumeStatus.CREATING, None)


async def test_sweep_takes_back_abandoned_placements_and_places_them_again(
    db: Database, managers: FakeManagers
) -> None:
    scheduler = make_scheduler(db, managers)
    # Placed on A, but its manager never took it by the hand-off deadline.
    await add_volume(db, "never-taken")
    await update_row(db, "never-taken", host=A, lease_expires_at=ago(1))
    # Taken by a manager that died: its lease lapsed.
    await add_volume(db, "dead-worker")
    await update_row(
        db, "dead-worker", host=A, worker=OTHER_WORKER, lease_expires_at=ago(1), updated_at=ago(1)
    )
    # Still someone's: a hand-off within its deadline, a manager renewing its lease.
    await add_volume(db, "handing-off")
    await update_row(db, "handing-off", host=A, lease_expires_at=later(30))
    await add_volume(db, "being-created")
    await update_row(db, "being-created", host=A, worker=OTHER_WORKER, lease_expires_at=later(30))
    # Not creating any more.
    await add_volume(db, "done")
    await update_row(db, "done", host=A, status=VolumeStatus.AVAILABLE)

    assert await sweep_of(scheduler, db).sweep_once() == 2
    await scheduler.close()

    assert sorted((s.spec.volume_id, s.host, s.retry) for s in managers.sent) == [
        ("dead-worker", A, RetryState(1, (A,), LAPSED)),
        ("never-taken", A, RetryState(1, (A,), LAPSED)),
    ]
    for volume_id in ("never-taken", "dead-worker"):
        row = await get_volume(db, volume_id)
        assert (row.status, row.host, row.worker) == (VolumeStatus.CREATING, A, None)
        assert row.lease_expires_at is not None and row.lease_expires_at > later(20)
        assert (row.schedule_attempts, row.tried_hosts) == (1, A)
        assert row.last_error is not None and "did not create the volume in time" in row.last_error
    assert (await get_volume(db, "handing-off")).host == A
    row = await get_volume(db, "being-created")
    assert (row.host, row.worker, row.schedule_attempts) == (A, OTHER_WORKER, 0)
    assert (await get_volume(db, "done")).status == VolumeStatus.AVAILABLE


async def test_sweep_leaves_what_this_scheduler_is_placing(
    db: Database, managers: FakeManagers
) -> None:
    scheduler = make_scheduler(db, managers, handoff_timeout=5.0)
    await add_volume(db, "v1")
    managers.down.add("a")
    task = scheduler.submit(request("v1"))
    await asyncio.sleep(0.1)
    await update_row(db, "v1", lease_expires_at=ago(1), created_at=ago(60))  # looks abandoned
    assert await sweep_of(scheduler, db, unplaced_grace=0).sweep_once() == 0
    row = await get_volume(db, "v1")
    assert (row.host, row.schedule_attempts) == (A, 0)
    managers.down.clear()
    await asyncio.wait_for(task, 5)
    assert [s.host for s in managers.sent] == [A]


async def test_deferred_volume_is_placed_by_the_sweep_once_a_backend_reports(
    db: Database, managers: FakeManagers
) -> None:
    scheduler = make_scheduler(db, managers, reported=False)
    await add_volume(db, "v1")
    await scheduler.submit(request("v1"))  # deferred: nobody has reported
    sweep = sweep_of(scheduler, db, unplaced_grace=0)
    assert await sweep.sweep_once() == 1  # offered again; deferred again
    await scheduler.close()
    row = await get_volume(db, "v1")
    assert (row.status, row.host, row.error_reason) == (VolumeStatus.CREATING, None, None)
    assert managers.tries == []

    report_a(scheduler.states)
    assert await sweep.sweep_once() == 1
    await scheduler.close()
    assert [(s.spec.volume_id, s.host) for s in managers.sent] == [("v1", A)]
    row = await get_volume(db, "v1")
    assert (row.status, row.host, row.schedule_attempts) == (VolumeStatus.CREATING, A, 0)
    assert await sweep.sweep_once() == 0  # placed, within its hand-off deadline


# Quota reservations and housekeeping.

DELTAS = quota.volume_deltas(5, DEFAULT_VOLUME_TYPE)


async def reserve(db: Database, age: float) -> list[str]:
    """A durable reservation of one 5 GB volume made ``age`` seconds ago."""
    async with db.session() as session:
        ids = await quota.reserve(session, "p1", DELTAS, QuotaSettings())
    async with db.session() as session:
        for reservation in await session.exec(
            select(Reservation).where(col(Reservation.id).in_(ids))
        ):
            reservation.created_at = ago(age)
    return ids


async def reserved(db: Database) -> dict[str, int]:
    async with db.session() as session:
        rows = await session.exec(select(QuotaUsage).where(QuotaUsage.project_id == "p1"))
        return {row.resource: row.reserved for row in rows}


async def in_use(db: Database) -> dict[str, int]:
    async with db.session() as session:
        rows = await session.exec(select(QuotaUsage).where(QuotaUsage.project_id == "p1"))
        return {row.resource: row.in_use for row in rows}


async def expire(db: Database, age: float) -> int:
    async with db.session() as session:
        return await quota.expire_reservations(session, ago(age))


async def test_expired_reservations_are_given_back_exactly_once(db: Database) -> None:
    stale = await reserve(db, age=7200)
    fresh = await reserve(db, age=0)
    assert await reserved(db) == {resource: 2 * delta for resource, delta in DELTAS.items()}

    assert await expire(db, age=3600) == len(stale)
    assert await reserved(db) == DELTAS  # only the fresh one is still reserved
    assert await expire(db, age=3600) == 0
    assert await reserved(db) == DELTAS

    # The work that made the stale reservation settling it late changes nothing...
    async with db.session() as session:
        await quota.commit(session, stale)
    async with db.session() as session:
        await quota.rollback(session, stale)
    assert await reserved(db) == DELTAS
    assert await in_use(db) == USAGE
    # ...and the fresh one still commits normally.
    async with db.session() as session:
        await quota.commit(session, fresh)
    assert await reserved(db) == {resource: 0 for resource in USAGE}
    assert await in_use(db) == {resource: USAGE[resource] + DELTAS[resource] for resource in USAGE}


async def test_concurrent_expiries_give_each_reservation_back_once(db: Database) -> None:
    for _ in range(3):
        await reserve(db, age=7200)
    counts = await asyncio.gather(*(expire(db, age=3600) for _ in range(4)))
    assert sum(counts) == 3 * len(DELTAS)
    assert await reserved(db) == {resource: 0 for resource in USAGE}
    assert await in_use(db) == USAGE
    async with db.session() as session:
        assert list(await session.exec(select(Reservation))) == []


async def test_housekeeping_expires_reservations_and_old_create_records(
    db: Database, managers: FakeManagers
) -> None:
    scheduler = make_scheduler(db, managers)
    sweep = sweep_of(scheduler, db, reservation_expire=3600, idempotency_window=600)
    await reserve(db, age=7200)
    fresh = await reserve(db, age=0)
    async with db.session() as session:
        session.add(
            VolumeCreateRequest(
                project_id="p1", request_id="old", volume_id="v0", created_at=ago(900)
            )
        )
        session.add(VolumeCreateRequest(project_id="p1", request_id="new", volume_id="v1"))

    await sweep.housekeeping()
    await sweep.housekeeping()

    assert await reserved(db) == DELTAS
    async with db.session() as session:
        left = {r.id for r in await session.exec(select(Reservation))}
        requests = {r.request_id for r in await session.exec(select(VolumeCreateRequest))}
    assert left == set(fresh)
    assert requests == {"new"}
    assert await in_use(db) == USAGE
