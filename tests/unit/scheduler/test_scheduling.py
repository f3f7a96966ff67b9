"""The create-volume flow with an in-memory volume manager double and a real database."""

from __future__ import annotations

import asyncio
import time

import pytest

from cindermesh.db.engine import Database
from cindermesh.db.models import Volume, VolumeStatus, utcnow
from services.scheduler.spec import RetryState

from .conftest import (
    USAGE,
    add_volume,
    ago,
    count_usage,
    get_volume,
    handed_back,
    released_once,
    update_row,
    usages,
)
from .fakes import (
    STREAM_A,
    A,
    B,
    FakeManagers,
    free,
    make_scheduler,
    report_a,
    request,
)


@pytest.fixture
def managers() -> FakeManagers:
    return FakeManagers()


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
    assert await free(db, scheduler, A) == 200.0 - 6 * 50
    assert len(managers.sent) == 6


async def test_reschedule_gives_back_last_host_and_prefers_untried(
    db: Database, managers: FakeManagers
) -> None:
    scheduler = make_scheduler(db, managers)
    await add_volume(db, "v1")
    await scheduler.schedule(request("v1"))
    assert await free(db, scheduler, A) == 190.0
    (first,) = managers.sent
    assert first.retry == RetryState()
    row = await get_volume(db, "v1")
    assert (row.host, row.worker, row.schedule_attempts) == (A, None, 0)
    assert row.lease_expires_at is not None and row.lease_expires_at > utcnow()

    # What the manager leaves, and sends back, after its attempt on A failed.
    await handed_back(db, "v1", A, "driver failed")
    retry = RetryState(1, (A,), "driver failed")
    await scheduler.schedule(request("v1", retry=retry))
    assert await free(db, scheduler, A) == 200.0  # given back
    assert await free(db, scheduler, B) == 90.0
    second = managers.sent[1]
    assert second.host == B
    assert second.retry == retry  # forwarded unchanged
    row = await get_volume(db, "v1")
    assert (row.host, row.schedule_attempts, row.tried_hosts) == (B, 1, A)


async def test_reschedule_may_reuse_the_only_passing_pool(
    db: Database, managers: FakeManagers
) -> None:
    scheduler = make_scheduler(db, managers)
    await add_volume(db, "v1")
    await update_row(db, "v1", schedule_attempts=1, tried_hosts=B)
    retry = RetryState(1, (B,), "driver failed")
    await scheduler.schedule(request("v1", az="az2", retry=retry))
    assert [s.host for s in managers.sent] == [B]
    assert (await get_volume(db, "v1")).host == B


async def test_attempts_exhausted(db: Database, managers: FakeManagers) -> None:
    scheduler = make_scheduler(db, managers, max_attempts=2)
    await add_volume(db, "v1")
    await update_row(db, "v1", schedule_attempts=2, tried_hosts=f"{B}\n{A}")
    await scheduler.schedule(request("v1", retry=RetryState(2, (B, A), "boom")))
    row = await get_volume(db, "v1")
    assert row.status == VolumeStatus.ERROR
    assert row.error_reason == (
        "No valid backend was found. Exceeded max scheduling attempts 2 for resource v1"
    )
    assert (row.host, row.quota_held) == (None, False)
    assert await usages(db) == released_once()
    assert await free(db, scheduler, A) == 200.0
    assert managers.sent == []


async def test_single_attempt(db: Database, managers: FakeManagers) -> None:
    scheduler = make_scheduler(db, managers, max_attempts=1)
    await add_volume(db, "v1")
    await scheduler.schedule(request("v1"))
    assert managers.sent[0].retry == RetryState()
    await handed_back(db, "v1", A, "boom")
    await scheduler.schedule(request("v1", retry=RetryState(1, (A,), "boom")))
    assert len(managers.sent) == 1
    row = await get_volume(db, "v1")
    assert (row.status, row.quota_held) == (VolumeStatus.ERROR, False)
    assert await usages(db) == released_once()


async def test_too_big_for_every_pool(db: Database, managers: FakeManagers) -> None:
    scheduler = make_scheduler(db, managers)
    await add_volume(db, "v1", size=10_000)
    await count_usage(db, 10_000)
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
    assert await free(db, scheduler, A) == 200.0
    async with db.session() as session:
        assert await session.get(Volume, "never-created") is None


async def test_stale_request_leaves_the_row_and_gives_capacity_back(
    db: Database, managers: FakeManagers
) -> None:
    """The row has moved on (another attempt was counted) since the request was made."""
    scheduler = make_scheduler(db, managers)
    await add_volume(db, "v1")
    await update_row(db, "v1", schedule_attempts=1, tried_hosts=B)
    await scheduler.schedule(request("v1"))  # the api's first request, arriving late
    assert managers.sent == []
    assert await free(db, scheduler, A) == 200.0
    row = await get_volume(db, "v1")
    assert (row.status, row.host, row.schedule_attempts) == (VolumeStatus.CREATING, None, 1)


async def test_volume_placed_by_another_scheduler_is_left(
    db: Database, managers: FakeManagers
) -> None:
    scheduler = make_scheduler(db, managers)
    await add_volume(db, "v1")
    await update_row(db, "v1", host=B)
    await scheduler.schedule(request("v1"))
    assert managers.sent == []
    assert await free(db, scheduler, A) == 200.0
    row = await get_volume(db, "v1")
    assert (row.status, row.host) == (VolumeStatus.CREATING, B)


async def test_no_backend_defers_then_places_once_one_reports(
    db: Database, managers: FakeManagers
) -> None:
    scheduler = make_scheduler(db, managers, reported=False)
    await add_volume(db, "v1")
    await asyncio.wait_for(scheduler.schedule(request("v1")), 5)  # returns: deferred
    row = await get_volume(db, "v1")
    assert (row.status, row.host, row.worker) == (VolumeStatus.CREATING, None, None)
    assert (row.schedule_attempts, row.error_reason, row.quota_held) == (0, None, True)
    assert await usages(db) == USAGE
    assert managers.tries == []

    report_a(scheduler.states)
    await scheduler.schedule(request("v1"))  # as the sweep offers it again
    assert [s.host for s in managers.sent] == [A]
    row = await get_volume(db, "v1")
    assert (row.status, row.host, row.schedule_attempts) == (VolumeStatus.CREATING, A, 0)


async def test_deferred_past_the_placement_timeout_errors_and_gives_quota_back_once(
    db: Database, managers: FakeManagers
) -> None:
    scheduler = make_scheduler(db, managers, reported=False)
    await add_volume(db, "v1")
    await update_row(db, "v1", created_at=ago(3600))  # placement_timeout is 120 s
    for _ in range(2):
        await scheduler.schedule(request("v1"))
    row = await get_volume(db, "v1")
    assert (row.status, row.host, row.quota_held) == (VolumeStatus.ERROR, None, False)
    assert row.error_reason == "No valid backend was found. No backend has reported its capacity."
    assert await usages(db) == released_once()


async def test_handoff_retries_until_the_manager_is_back(
    db: Database, managers: FakeManagers
) -> None:
    scheduler = make_scheduler(db, managers, handoff_timeout=5.0)
    await add_volume(db, "v1")
    managers.down.add("a")
    task = scheduler.submit(request("v1"))
    await asyncio.sleep(0.3)
    assert not task.done()
    assert len(managers.tries) >= 2  # tried again, with backoff
    managers.down.clear()
    await asyncio.wait_for(task, 5)
    assert [(s.address, s.host, s.retry) for s in managers.sent] == [("a", A, RetryState())]
    row = await get_volume(db, "v1")
    assert (row.status, row.host, row.schedule_attempts, row.tried_hosts) == (
        VolumeStatus.CREATING,
        A,
        0,
        "",
    )
    assert await free(db, scheduler, A) == 190.0
    assert await free(db, scheduler, B) == 100.0


async def test_unreachable_manager_is_taken_back_and_placed_again(
    db: Database, managers: FakeManagers
) -> None:
    scheduler = make_scheduler(db, managers, handoff_timeout=0.2)
    await add_volume(db, "v1")
    managers.down.add("a")
    await asyncio.wait_for(scheduler.schedule(request("v1")), 5)
    [sent] = managers.sent
    assert (sent.address, sent.host, sent.retry.num_attempts, sent.retry.hosts) == ("b", B, 1, (A,))
    assert "a is down" in sent.retry.last_error
    row = await get_volume(db, "v1")
    assert (row.status, row.host, row.schedule_attempts, row.tried_hosts) == (
        VolumeStatus.CREATING,
        B,
        1,
        A,
    )
    assert row.last_error is not None and "a is down" in row.last_error
    assert await free(db, scheduler, A) == 200.0  # given back
    assert await free(db, scheduler, B) == 90.0


async def test_unreachable_managers_error_the_volume_once_attempts_run_out(
    db: Database, managers: FakeManagers
) -> None:
    scheduler = make_scheduler(db, managers, max_attempts=2, handoff_timeout=0.2)
    await add_volume(db, "v1")
    managers.down.update({"a", "b"})
    await asyncio.wait_for(scheduler.schedule(request("v1")), 5)
    assert managers.sent == []
    assert set(managers.tries) == {"a", "b"}
    row = await get_volume(db, "v1")
    assert (row.status, row.host, row.quota_held) == (VolumeStatus.ERROR, None, False)
    assert (row.schedule_attempts, row.tried_hosts) == (2, f"{A}\n{B}")
    assert row.error_reason == (
        "No valid backend was found. Exceeded max scheduling attempts 2 for resource v1"
    )
    assert await usages(db) == released_once()
    assert await free(db, scheduler, A) == 200.0
    assert await free(db, scheduler, B) == 100.0


async def test_handoff_gives_up_early_when_the_backend_stopped_reporting(
    db: Database, managers: FakeManagers
) -> None:
    scheduler = make_scheduler(db, managers, handoff_timeout=30.0)
    await add_volume(db, "v1")
    managers.down.add("a")
    task = scheduler.submit(request("v1"))
    await asyncio.sleep(0.2)
    assert not task.done()
    started = time.monotonic()
    scheduler.states.remove("node1@file-1", STREAM_A)  # A's stream ended
    await asyncio.wait_for(task, 5)
    assert time.monotonic() - started < 2.0  # long before the hand-off deadline
    assert [s.host for s in managers.sent] == [B]
    row = await get_volume(db, "v1")
    assert (row.host, row.schedule_attempts, row.tried_hosts) == (B, 1, A)


async def test_unreachable_manager_is_retried_while_no_other_pool_would_do(
    db: Database, managers: FakeManagers
) -> None:
    """A stopped reporting, but B does not pass the filters: keep trying A."""
    scheduler = make_scheduler(db, managers, handoff_timeout=5.0)
    await add_volume(db, "v1")
    managers.down.add("a")
    task = scheduler.submit(request("v1", volume_backend_name="file-1"))
    await asyncio.sleep(0.1)
    scheduler.states.remove("node1@file-1", STREAM_A)
    await asyncio.sleep(0.3)
    assert not task.done()
    managers.down.clear()
    await asyncio.wait_for(task, 5)
    assert [s.host for s in managers.sent] == [A]
    row = await get_volume(db, "v1")
    assert (row.host, row.schedule_attempts) == (A, 0)


async def test_refusing_manager_stops_the_handoff_and_leaves_the_row(
    db: Database, managers: FakeManagers
) -> None:
    scheduler = make_scheduler(db, managers)
    await add_volume(db, "v1")
    managers.refusing.add("a")
    await asyncio.wait_for(scheduler.schedule(request("v1")), 5)
    assert managers.tries == ["a"]
    row = await get_volume(db, "v1")
    assert (row.status, row.host, row.schedule_attempts) == (VolumeStatus.CREATING, A, 0)
    assert row.error_reason is None and row.quota_held


async def test_one_schedule_per_volume_at_a_time(db: Database, managers: FakeManagers) -> None:
    scheduler = make_scheduler(db, managers, handoff_timeout=5.0)
    await add_volume(db, "v1")
    managers.down.add("a")
    first = scheduler.submit(request("v1"))
    assert scheduler.in_flight("v1")
    assert scheduler.submit(request("v1")) is first
    managers.down.clear()
    await asyncio.wait_for(first, 5)
    await asyncio.sleep(0)  # the done callback
    assert not scheduler.in_flight("v1")
    assert [s.host for s in managers.sent] == [A]


async def test_stop_while_handing_off_leaves_the_volume_for_the_sweep(
    db: Database, managers: FakeManagers
) -> None:
    scheduler = make_scheduler(db, managers, handoff_timeout=30.0)
    await add_volume(db, "v1")
    managers.down.add("a")
    scheduler.submit(request("v1"))
    await asyncio.sleep(0.1)
    await scheduler.close(timeout=0.05)
    row = await get_volume(db, "v1")
    # Placed, with its hand-off deadline: a manager's sweep or, past it, a scheduler's.
    assert (row.status, row.host, row.worker) == (VolumeStatus.CREATING, A, None)
    assert row.lease_expires_at is not None and row.lease_expires_at > utcnow()
    assert (row.error_reason, row.quota_held) == (None, True)
    assert await usages(db) == USAGE
    # Not handed over: the row still claims the pool until the sweep takes it back.
    assert await free(db, scheduler, A) == 190.0
