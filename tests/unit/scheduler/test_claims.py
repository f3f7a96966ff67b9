"""Capacity claimed in the database: the pool's numbers with the rows' claims, and two scheduler
replicas (two ``Scheduler``s, each its own backend states) over one real SQLite database that
never place two volumes on the same free space, nor one volume twice."""

from __future__ import annotations

import asyncio
import math

from sqlmodel import select

from cindermesh.db import placements
from cindermesh.db.engine import Database
from cindermesh.db.models import Message, Volume, VolumeStatus
from services.scheduler import claims
from services.scheduler.backend_state import BackendStates
from services.scheduler.scheduling import Scheduler, SchedulerConfig

from .conftest import add_volume, count_usage, get_volume
from .factories import backend_report, pool, pool_report
from .fakes import FakeManagers, request

POOL = "node1@file-1#pool1"


def test_claims_the_report_does_not_show_are_consumed() -> None:
    reported = pool(
        total_capacity_gb=100.0,
        free_capacity_gb=70.0,
        allocated_capacity_gb=30.0,
        provisioned_capacity_gb=40.0,
    )
    # 45 GiB claimed, 30 reported: 15 GiB placed since the report.
    seen = claims.with_claims(reported, claims.PoolClaims(allocated_gb=45.0, volume_count=9))
    assert (
        seen.allocated_capacity_gb,
        seen.provisioned_capacity_gb,
        seen.free_capacity_gb,
        seen.volume_count,
    ) == (45.0, 55.0, 55.0, 9)


def test_a_report_that_counts_every_claim_is_taken_as_it_is() -> None:
    reported = pool(free_capacity_gb=70.0, allocated_capacity_gb=30.0)
    seen = claims.with_claims(reported, claims.PoolClaims(allocated_gb=20.0, volume_count=2))
    assert (seen.allocated_capacity_gb, seen.free_capacity_gb) == (30.0, 70.0)
    unbounded = pool(free_capacity_gb=math.inf, allocated_capacity_gb=0.0)
    assert claims.with_claims(unbounded, claims.PoolClaims(10.0, 1)).free_capacity_gb == math.inf


def _replica(db: Database, managers: FakeManagers, name: str) -> Scheduler:
    """A scheduler with its own backend states: one thick pool of 10 GiB, nothing on it."""
    states = BackendStates()
    states.update(
        backend_report(
            pool_report(
                total_capacity_gb=10.0,
                free_capacity_gb=10.0,
                thin_provisioning_support=False,
                thick_provisioning_support=True,
            ),
            address="a",
        ),
        object(),
    )
    return Scheduler(states, db, managers, SchedulerConfig(name=name))


async def test_two_replicas_never_overcommit_a_pool(db: Database) -> None:
    managers = FakeManagers()
    replicas = [_replica(db, managers, "s1"), _replica(db, managers, "s2")]
    volume_ids = [f"v{i:02d}" for i in range(15)]
    for volume_id in volume_ids:
        await add_volume(db, volume_id, size=1)
    await count_usage(db, size=1, volumes=len(volume_ids))
    await asyncio.gather(
        *(
            replicas[i % 2].schedule(request(volume_id, size=1))
            for i, volume_id in enumerate(volume_ids)
        )
    )
    rows = [await get_volume(db, volume_id) for volume_id in volume_ids]
    placed = [row for row in rows if row.host == POOL]
    failed = [row for row in rows if row.status == VolumeStatus.ERROR]
    assert (len(placed), len(failed)) == (10, 5)
    assert sorted(s.spec.volume_id for s in managers.sent) == sorted(r.id for r in placed)
    async with db.read() as session:
        messages = list(await session.exec(select(Message)))
        on_pool = await session.exec(
            select(Volume).where(Volume.host == POOL, Volume.status != VolumeStatus.ERROR)
        )
        assert sum(v.size for v in on_pool) == 10
    assert sorted(m.resource_uuid or "" for m in messages) == sorted(r.id for r in failed)
    assert {m.filter_name for m in messages} == {"CapacityFilter"}


async def test_a_volume_two_replicas_race_for_is_placed_once(db: Database) -> None:
    managers = FakeManagers()
    first, second = _replica(db, managers, "s1"), _replica(db, managers, "s2")
    await add_volume(db, "v1", size=1)
    await asyncio.gather(
        first.schedule(request("v1", size=1)), second.schedule(request("v1", size=1))
    )
    assert [s.spec.volume_id for s in managers.sent] == ["v1"]
    row = await get_volume(db, "v1")
    assert (row.status, row.host) == (VolumeStatus.CREATING, POOL)


async def test_an_error_or_a_take_back_gives_the_claim_back(db: Database) -> None:
    managers = FakeManagers()
    replica = _replica(db, managers, "s1")
    await add_volume(db, "big", size=10)
    await replica.schedule(request("big", size=10))
    assert (await get_volume(db, "big")).host == POOL
    assert (await claims.read_claims(db))[POOL] == claims.PoolClaims(10.0, 1)
    async with db.session() as session:
        row = await session.get(Volume, "big")
        assert row is not None
        row.status = VolumeStatus.ERROR
        session.add(row)
    # An errored volume still counts as a volume on the pool, not as capacity.
    assert (await claims.read_claims(db))[POOL] == claims.PoolClaims(0.0, 1)
    await add_volume(db, "next", size=10)
    await replica.schedule(request("next", size=10))
    assert (await get_volume(db, "next")).host == POOL


async def test_the_decision_is_kept_with_the_volume(db: Database) -> None:
    managers = FakeManagers()
    replica = _replica(db, managers, "s1")
    await add_volume(db, "v1", size=4)
    await replica.schedule(request("v1", size=4))
    await add_volume(db, "v2", size=8)
    await count_usage(db, size=8)
    await replica.schedule(request("v2", size=8))
    async with db.read() as session:
        placed = await placements.attempts_of(session, "v1")
        refused = await placements.attempts_of(session, "v2")
    assert [(a.attempt, a.result, a.chosen, a.scheduler) for a in placed] == [
        (1, "placed", POOL, "s1")
    ]
    assert [f.name for f in placed[0].filters] == [
        "AvailabilityZoneFilter",
        "CapacityFilter",
        "CapabilitiesFilter",
    ]
    assert [(w.pool, w.weight) for w in placed[0].weighed] == [(POOL, 0.0)]
    assert placed[0].request["size_gb"] == 4
    (attempt,) = refused
    assert (attempt.result, attempt.chosen, attempt.last_filter) == (
        "no_valid_backend",
        None,
        "CapacityFilter",
    )
    capacity = attempt.filters[1]
    assert capacity.passed == ()
    assert capacity.rejected == (
        (
            POOL,
            "Insufficient free space for volume creation on host node1@file-1#pool1 "
            "(requested / avail): 8/6.0",
        ),
    )
