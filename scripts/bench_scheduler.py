#!/usr/bin/env python3
"""The scheduler's time per decision at 1, 10, 100 and 1,000 pools: a benchmark, not a test.

One scheduler (the product's ``Scheduler``, its default filters and weighers, or those of
``--filters``/``--weighers``) over N reporting backends of one pool each, on a real SQLite
database in a temporary directory holding ``--volumes`` volumes spread over the pools (the
claims every decision reads). Each decision places one new 1 GiB volume: read the claims,
filter, weigh, order, claim the pool in the transaction that records the host and the
decision; the hand-off goes to a volume manager double that accepts at once. Two figures per
pool count, p50 and p95 over ``--decisions`` decisions:

* ``decide``: filters, weighers and ordering in memory (``Scheduler._candidates``);
* ``place``: the whole ScheduleCreateVolume step, database included.

    .venv/bin/python scripts/bench_scheduler.py [--pools 1,10,100,1000] [--decisions 200]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
from pathlib import Path

from sqlmodel import select

from cindermesh.db.engine import Database, open_database
from cindermesh.db.models import DEFAULT_VOLUME_TYPE, Service, Volume, VolumeType
from cindermesh.settings import SchedulerSettings, Settings
from services.scheduler import claims, registry
from services.scheduler.backend_state import BackendReport, BackendStates, PoolReport
from services.scheduler.scheduling import CreateVolumeState, Scheduler, SchedulerConfig
from services.scheduler.spec import RetryState, ScheduleRequest, VolumeSpec, VolumeTypeSpec


class AcceptingManagers:
    """A volume manager double that accepts every volume at once."""

    async def create_volume(
        self, address: str, spec: VolumeSpec, host: str, retry: RetryState
    ) -> None:
        return None


def _report(index: int, sequence: int) -> BackendReport:
    name = f"file-{index:04d}"
    return BackendReport(
        backend=f"bench@{name}",
        volume_backend_name=name,
        availability_zone=f"az{index % 3}",
        address=f"127.0.0.1:{20000 + index}",
        vendor_name="cindermesh",
        driver_version="1.0",
        storage_protocol="file",
        pools=(
            PoolReport(
                pool_name=name,
                total_capacity_gb=1000.0 + index,
                free_capacity_gb=1000.0 + index,
                allocated_capacity_gb=0.0,
                provisioned_capacity_gb=0.0,
                thin_provisioning_support=index % 2 == 0,
                thick_provisioning_support=index % 2 == 1,
                max_over_subscription_ratio=20.0,
                reserved_percentage=index % 10,
                extra={"multiattach": "True"},
            ),
        ),
        sequence=sequence,
    )


async def _setup(db: Database, pools: int, volumes: int) -> str:
    await db.create_schema()
    async with db.session() as session:
        type_id = (
            await session.exec(select(VolumeType.id).where(VolumeType.name == DEFAULT_VOLUME_TYPE))
        ).one()
        for index in range(pools):
            session.add(
                Service(
                    host=f"bench@file-{index:04d}",
                    address=f"127.0.0.1:{20000 + index}",
                    availability_zone=f"az{index % 3}",
                )
            )
        for n in range(volumes):
            pool = f"file-{n % pools:04d}"
            session.add(
                Volume(
                    project_id="bench",
                    user_id="bench",
                    size=1,
                    status="available",
                    availability_zone="az0",
                    volume_type_id=type_id,
                    host=f"bench@{pool}#{pool}",
                )
            )
    return str(type_id)


async def _new_volume(db: Database, type_id: str) -> str:
    volume_id = str(uuid.uuid4())
    async with db.session() as session:
        session.add(
            Volume(
                id=volume_id,
                project_id="bench",
                user_id="bench",
                size=1,
                availability_zone="",
                volume_type_id=type_id,
            )
        )
    return volume_id


def _percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return statistics.median(ordered) * 1000, p95 * 1000


async def _bench(pools: int, decisions: int, volumes: int, settings: SchedulerSettings) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        db = open_database(Settings(data_dir=Path(tmp)))
        type_id = await _setup(db, pools, volumes)
        states = BackendStates()
        for index in range(pools):
            states.update(_report(index, 1), object())
        filters, weighers, handler = registry.from_settings(settings)
        config = SchedulerConfig(filters=filters, weighers=weighers, weight_handler=handler)
        scheduler = Scheduler(states, db, AcceptingManagers(), config)  # type: ignore[arg-type]
        decide: list[float] = []
        place: list[float] = []
        for _ in range(decisions):
            volume_id = await _new_volume(db, type_id)
            request = ScheduleRequest(
                VolumeSpec(
                    volume_id=volume_id,
                    project_id="bench",
                    size_gb=1,
                    volume_type=VolumeTypeSpec(name=DEFAULT_VOLUME_TYPE),
                )
            )
            # The in-memory part alone, on the claims as the database has them.
            state = CreateVolumeState(request)
            await scheduler._extract(state)
            claimed = await claims.read_claims(db)
            started = time.perf_counter()
            scheduler._candidates(state, frozenset(), claimed)
            decide.append(time.perf_counter() - started)
            # The whole placement step, database included.
            state = CreateVolumeState(request)
            await scheduler._extract(state)
            started = time.perf_counter()
            await scheduler._place(state)
            place.append(time.perf_counter() - started)
        await db.close()
    d50, d95 = _percentiles(decide)
    p50, p95 = _percentiles(place)
    return f"{pools:>6}  {d50:10.3f}  {d95:10.3f}  {p50:10.3f}  {p95:10.3f}"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pools", default="1,10,100,1000")
    parser.add_argument("--decisions", type=int, default=200)
    parser.add_argument("--volumes", type=int, default=2000, help="volumes already placed")
    parser.add_argument("--filters", default="", help="comma-separated filter names")
    parser.add_argument("--weighers", default="", help="comma-separated weigher names")
    args = parser.parse_args()
    settings = SchedulerSettings()
    if args.filters:
        settings = SchedulerSettings(scheduler_default_filters=tuple(args.filters.split(",")))
    if args.weighers:
        settings = SchedulerSettings(
            scheduler_default_filters=settings.scheduler_default_filters,
            scheduler_default_weighers=tuple(args.weighers.split(",")),
        )
    print(
        f"filters {','.join(settings.scheduler_default_filters)}; weighers "
        f"{','.join(settings.scheduler_default_weighers)}; {args.volumes} volumes placed; "
        f"{args.decisions} decisions per row; SQLite"
    )
    print(" pools  decide p50  decide p95   place p50   place p95   (ms)")
    for pools in (int(n) for n in args.pools.split(",")):
        print(await _bench(pools, args.decisions, args.volumes, settings), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
