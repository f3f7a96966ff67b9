"""The create-volume flow with an in-memory volume manager double and a real database."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import pytest

from cindermesh.db.engine import Database
from cindermesh.db.models import Volume, VolumeStatus
from cindermesh.errors import BackendUnavailable
from services.scheduler.backend_state import BackendStates
from services.scheduler.scheduling import Scheduler, SchedulerConfig
from services.scheduler.spec import (
    RetryState,
    ScheduleRequest,
    VolumeSpec,
    VolumeTypeSpec,
)

from .conftest import add_volume, get_volume
from .factories import backend_report, pool_report

A = "node1@file-1#pool1"
B = "node2@file-2#pool1"


@dataclass(frozen=True)
class Sent:
    address: str
    spec: VolumeSpec
    host: str
    retry: RetryState


class FakeManagers:
    """The VolumeManagers double: records calls; refuses addresses listed in ``down``."""

    def __init__(self) -> None:
        self.sent: list[Sent] = []
        self.down: set[str] = set()

    async def create_volume(
        self, address: str, spec: VolumeSpec, host: str, retry: RetryState
    ) -> None:
        if address in self.down:
            raise BackendUnavailable(f"{address} is down")
        self.sent.append(Sent(address, spec, host, retry))


def make_scheduler(
    db: Database, managers: FakeManagers, max_attempts: int = 3, multiplier: float = 1.0
) -> Scheduler:
    states = BackendStates()
    # A has more room than B, so A wins unless something says otherwise.
    states.update(
        backend_report(pool_report(total_capacity_gb=200.0, free_capacity_gb=200.0), address="a"),
        object(),
    )
    states.update(
        backend_report(
            backend="node2@file-2",
            volume_backend_name="file-2",
            availability_zone="az2",
            address="b",
        ),
        object(),
    )
    config = SchedulerConfig(
        max_attempts=max_attempts, capacity_weight_multiplier=multiplier, startup_wait=0
    )
    return Scheduler(states, db, managers, config)


def request(
    volume_id: str,
    size: int = 10,
    az: str = "",
    retry: RetryState | None = None,
    **extra_specs: str,
) -> ScheduleRequest:
    spec = VolumeSpec(
        volume_id=volume_id,
        project_id="p1",
        size_gb=size,
        availability_zone=az,
        volume_type=VolumeTypeSpec(name="__DEFAULT__", extra_specs=extra_specs),
    )
    return ScheduleRequest(spec, retry)


@pytest.fixture
def managers() -> FakeManagers:
    return FakeManagers()


def free(scheduler: Scheduler, pool_id: str) -> float:
    state = scheduler.states.pool(pool_id)
    assert state is not None
    return state.free_capacity_gb


@pytest.mark.parametrize(
    ("multiplier", "az", "extra_specs", "chosen"),
    [
        (1.0, "", {}, A),
        (-1.0, "", {}, B),  # stacking prefers the fuller pool
        (1.0, "az2", {}, B),
        (1.0, "", {"volume_backend_name": "file-2"}, B),
    ],
)
async def test_chooses_pool(
    db: Database,
    managers: FakeManagers,
    multiplier: float,
    az: str,
    extra_specs: dict[str, str],
    chosen: str,
) -> None:
    scheduler = make_scheduler(db, managers, multiplier=multiplier)
    await add_volume(db, "v1")
    await scheduler.schedule(request("v1", az=az, **extra_specs))
    assert [s.host for s in managers.sent] == [chosen]
    row = await get_volume(db, "v1")
    assert row.host == chosen
    assert row.availability_zone == ("az2" if chosen == B else "nova")


async def test_concurrent_schedules_consume_capacity(db: Database, managers: FakeManagers) -> None:
    scheduler = make_scheduler(db, managers)
    ids = [f"v{i}" for i in range(6)]
    for volume_id in ids:
        await add_volume(db, volume_id, size=50)
    await asyncio.gather(*(scheduler.schedule(request(v, size=50)) for v in ids))
    # Thin pools (mosr 20): A 200 GB -> 4000 virtual, B 100 GB -> 2000; all go to A.
    assert free(scheduler, A) == 200.0 - 6 * 50
    assert len(managers.sent) == 6


async def test_reschedule_gives_back_last_host_and_prefers_untried(
    db: Database, managers: FakeManagers
) -> None:
    scheduler = make_scheduler(db, managers)
    await add_volume(db, "v1")
    await scheduler.schedule(request("v1"))
    assert free(scheduler, A) == 190.0
    (first,) = managers.sent
    assert first.retry == RetryState()

    # What the manager sends back after its attempt on A failed.
    retry = RetryState(1, (A,), "driver failed")
    await scheduler.schedule(request("v1", retry=retry))
    assert free(scheduler, A) == 200.0  # given back
    assert free(scheduler, B) == 90.0
    second = managers.sent[1]
    assert second.host == B
    assert second.retry == retry  # forwarded unchanged


async def test_reschedule_may_reuse_the_only_passing_pool(
    db: Database, managers: FakeManagers
) -> None:
    scheduler = make_scheduler(db, managers)
    await add_volume(db, "v1")
    retry = RetryState(1, (B,), "driver failed")
    await scheduler.schedule(request("v1", az="az2", retry=retry))
    assert [s.host for s in managers.sent] == [B]


async def test_attempts_exhausted(db: Database, managers: FakeManagers) -> None:
    scheduler = make_scheduler(db, managers, max_attempts=2)
    await add_volume(db, "v1")
    scheduler.states.consume(A, 10)
    await scheduler.schedule(request("v1", retry=RetryState(2, (B, A), "boom")))
    row = await get_volume(db, "v1")
    assert row.status == VolumeStatus.ERROR
    assert row.error_reason == (
        "No valid backend was found. Exceeded max scheduling attempts 2 for resource v1"
    )
    assert free(scheduler, A) == 200.0
    assert managers.sent == []


async def test_single_attempt(db: Database, managers: FakeManagers) -> None:
    scheduler = make_scheduler(db, managers, max_attempts=1)
    await add_volume(db, "v1")
    await scheduler.schedule(request("v1"))
    assert managers.sent[0].retry == RetryState()
    await scheduler.schedule(request("v1", retry=RetryState(1, (A,), "boom")))
    assert len(managers.sent) == 1
    assert (await get_volume(db, "v1")).status == VolumeStatus.ERROR


async def test_too_big_for_every_pool(db: Database, managers: FakeManagers) -> None:
    scheduler = make_scheduler(db, managers)
    await add_volume(db, "v1", size=10_000)
    await scheduler.schedule(request("v1", size=10_000))
    row = await get_volume(db, "v1")
    assert row.status == VolumeStatus.ERROR
    assert row.error_reason == "No valid backend was found. No weighed backends available"


async def test_volume_deleted_meanwhile_gives_capacity_back(
    db: Database, managers: FakeManagers
) -> None:
    scheduler = make_scheduler(db, managers)
    await scheduler.schedule(request("never-created"))
    assert managers.sent == []
    assert free(scheduler, A) == 200.0
    async with db.session() as session:
        assert await session.get(Volume, "never-created") is None


async def test_waits_for_first_report_after_start(db: Database, managers: FakeManagers) -> None:
    states = BackendStates()
    scheduler = Scheduler(states, db, managers, SchedulerConfig(startup_wait=5))
    await add_volume(db, "v1")
    task = scheduler.submit(request("v1"))
    await asyncio.sleep(0.05)
    assert not task.done()
    states.update(backend_report(address="a"), object())
    await asyncio.wait_for(task, 5)
    assert [s.host for s in managers.sent] == [A]


async def test_stop_while_waiting_errors_the_volume(db: Database, managers: FakeManagers) -> None:
    scheduler = Scheduler(BackendStates(), db, managers, SchedulerConfig(startup_wait=5))
    await add_volume(db, "v1")
    scheduler.submit(request("v1"))
    await asyncio.sleep(0.05)
    await scheduler.close(timeout=0.05)
    row = await get_volume(db, "v1")
    assert row.status == VolumeStatus.ERROR
    assert row.error_reason == (
        "No valid backend was found. The scheduler stopped before the volume was placed."
    )
