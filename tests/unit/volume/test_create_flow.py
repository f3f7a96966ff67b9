from __future__ import annotations

from sqlmodel import delete

from cindermesh.db.engine import Database
from cindermesh.db.models import Volume, VolumeStatus
from cindermesh.grpc_server import insecure_channel
from services.volume import store
from services.volume.create_flow import FlowServices, run_create
from services.volume.errors import NotReschedulable
from services.volume.scheduler_client import SchedulerClient

from .helpers import (
    POOL,
    WORKER,
    FakeDriver,
    FakeScheduler,
    add_held_volume,
    add_volume,
    create_request,
    later,
    mark_deleting,
    reload,
    update_row,
    usage,
)


async def test_success_makes_the_volume_available_and_releases_it(
    services: FlowServices, db: Database, driver: FakeDriver
) -> None:
    volume = await add_held_volume(db, size=4)
    state = await run_create(services, create_request(volume))
    row = await reload(db, volume.id)
    assert row is not None
    assert row.status == VolumeStatus.AVAILABLE
    assert row.launched_at is not None and row.updated_at is not None
    assert row.service_uuid == "service-uuid-1"
    assert (row.worker, row.lease_expires_at) == (None, None)
    assert driver.volumes == {volume.id: 4}
    assert not state.rescheduled and not state.errored
    assert state.spec is not None and state.spec.volume_name == f"volume-{volume.id}"


async def test_driver_failure_goes_back_to_the_scheduler(
    services: FlowServices,
    db: Database,
    driver: FakeDriver,
    scheduler: tuple[FakeScheduler, int],
) -> None:
    fake, _ = scheduler
    driver.fail_create = "backend on fire"
    volume = await add_held_volume(db, size=2)
    before = await usage(db)
    state = await run_create(services, create_request(volume))
    assert state.rescheduled
    [sent] = fake.creates
    assert sent.spec.volume_id == volume.id
    assert sent.spec.size_gb == 2
    assert sent.retry.num_attempts == 1
    assert list(sent.retry.hosts) == [POOL]
    assert "backend on fire" in sent.retry.last_error
    row = await reload(db, volume.id)
    assert row is not None
    assert (row.status, row.host, row.service_uuid) == (VolumeStatus.CREATING, None, None)
    assert (row.worker, row.lease_expires_at) == (None, None)
    assert (row.schedule_attempts, row.tried_hosts) == (1, POOL)
    assert row.last_error is not None and "backend on fire" in row.last_error
    assert row.quota_held
    assert await usage(db) == before
    assert driver.deleted == [volume.id]  # a partly created image is removed


async def test_hand_back_counts_on_the_row_whatever_the_attempts(
    services: FlowServices,
    db: Database,
    driver: FakeDriver,
    scheduler: tuple[FakeScheduler, int],
) -> None:
    """The manager no longer decides that attempts ran out: the scheduler does."""
    fake, _ = scheduler
    driver.fail_create = "no space"
    tried = ("other@b#b", "third@c#c")
    volume = await add_held_volume(db, size=3, schedule_attempts=2, tried_hosts=tried)
    before = await usage(db)
    state = await run_create(services, create_request(volume))
    assert state.rescheduled and not state.errored
    [sent] = fake.creates
    assert sent.retry.num_attempts == 3
    assert list(sent.retry.hosts) == [*tried, POOL]
    row = await reload(db, volume.id)
    assert row is not None
    assert (row.status, row.host, row.worker) == (VolumeStatus.CREATING, None, None)
    assert row.schedule_attempts == 3
    assert row.tried_hosts == "\n".join([*tried, POOL])
    assert row.error_reason is None and row.quota_held
    assert await usage(db) == before


async def test_not_reschedulable_failure_ends_in_error_and_releases_quota_once(
    services: FlowServices,
    db: Database,
    driver: FakeDriver,
    scheduler: tuple[FakeScheduler, int],
) -> None:
    fake, _ = scheduler

    async def refuse(volume_id: str, size_gb: int) -> None:
        raise NotReschedulable("unsupported source")

    driver.create_volume = refuse  # type: ignore[method-assign]
    volume = await add_held_volume(db, size=3)
    before = await usage(db)
    state = await run_create(services, create_request(volume))
    assert state.errored and not state.rescheduled
    assert fake.creates == []
    row = await reload(db, volume.id)
    assert row is not None
    assert row.status == VolumeStatus.ERROR
    assert row.error_reason is not None and "unsupported source" in row.error_reason
    assert (row.host, row.worker, row.lease_expires_at) == (POOL, None, None)
    assert not row.quota_held
    assert await usage(db) == before - 3
    assert await usage(db, "volumes") == 0
    # A duplicate failure report changes nothing: the worker no longer holds the volume.
    assert not await store.mark_error(db, volume.id, "again", WORKER)
    again = await run_create(services, create_request(volume))
    assert not again.errored and not again.rescheduled
    assert await usage(db) == before - 3
    assert await usage(db, "volumes") == 0
    row = await reload(db, volume.id)
    assert row is not None and row.error_reason is not None
    assert "unsupported source" in row.error_reason


async def test_volume_deleted_meanwhile_is_neither_rescheduled_nor_errored(
    services: FlowServices, db: Database, driver: FakeDriver, scheduler: tuple[FakeScheduler, int]
) -> None:
    fake, _ = scheduler
    volume = await add_held_volume(db)
    original = driver.create_volume

    async def create_then_user_deletes(volume_id: str, size_gb: int) -> None:
        await original(volume_id, size_gb)
        await mark_deleting(db, volume_id)

    driver.create_volume = create_then_user_deletes  # type: ignore[method-assign]
    state = await run_create(services, create_request(volume))
    assert not state.rescheduled and not state.errored
    assert fake.creates == []
    assert driver.volumes == {}  # the image is removed again
    row = await reload(db, volume.id)
    assert row is not None
    assert (row.status, row.host, row.worker) == (VolumeStatus.DELETING, POOL, None)
    assert row.quota_held


async def test_a_manager_that_lost_the_volume_changes_nothing(
    services: FlowServices, db: Database, driver: FakeDriver, scheduler: tuple[FakeScheduler, int]
) -> None:
    """While the driver worked, the lease lapsed, a scheduler placed the volume again and
    another manager took it: this run's writes are all refused."""
    fake, _ = scheduler
    volume = await add_held_volume(db)
    original = driver.create_volume
    elsewhere, other = "node2@file-2#file-2", "node2@file-2/other"
    deadline = later(30)

    async def create_while_losing_it(volume_id: str, size_gb: int) -> None:
        await original(volume_id, size_gb)
        await update_row(
            db,
            volume_id,
            host=elsewhere,
            worker=other,
            lease_expires_at=deadline,
            schedule_attempts=1,
            tried_hosts=POOL,
        )

    driver.create_volume = create_while_losing_it  # type: ignore[method-assign]
    before = await usage(db)
    state = await run_create(services, create_request(volume))
    assert not state.rescheduled and not state.errored
    assert fake.creates == []
    assert driver.volumes == {}  # only its own image is removed
    row = await reload(db, volume.id)
    assert row is not None
    assert (row.status, row.host, row.worker) == (VolumeStatus.CREATING, elsewhere, other)
    assert (row.lease_expires_at, row.schedule_attempts, row.tried_hosts) == (deadline, 1, POOL)
    assert row.launched_at is None and row.quota_held
    assert await usage(db) == before


async def test_a_volume_the_worker_does_not_hold_is_not_created(
    services: FlowServices, db: Database, driver: FakeDriver, scheduler: tuple[FakeScheduler, int]
) -> None:
    volume = await add_volume(db)  # placed here, claimed by nobody
    state = await run_create(services, create_request(volume))
    assert not state.rescheduled and not state.errored
    assert driver.volumes == {} and driver.created == []
    assert scheduler[0].creates == []
    row = await reload(db, volume.id)
    assert row is not None
    assert (row.status, row.host, row.worker) == (VolumeStatus.CREATING, POOL, None)


async def test_unreachable_scheduler_leaves_the_volume_waiting_unplaced(
    db: Database, driver: FakeDriver
) -> None:
    channel = insecure_channel("127.0.0.1:1")
    services = FlowServices(db=db, driver=driver, scheduler=SchedulerClient(channel), worker=WORKER)
    driver.fail_create = "boom"
    volume = await add_held_volume(db, size=1)
    before = await usage(db)
    try:
        state = await run_create(services, create_request(volume))
    finally:
        await channel.close(None)
    assert state.rescheduled and not state.errored
    row = await reload(db, volume.id)
    assert row is not None
    # Waiting for a scheduler's sweep: unplaced, held by nobody, the attempt counted.
    assert (row.status, row.host, row.worker) == (VolumeStatus.CREATING, None, None)
    assert (row.schedule_attempts, row.tried_hosts) == (1, POOL)
    assert row.last_error is not None and "boom" in row.last_error
    assert row.error_reason is None and row.quota_held
    assert await usage(db) == before
    assert driver.volumes == {}


async def test_missing_row_fails_without_side_effects(
    services: FlowServices, db: Database, driver: FakeDriver, scheduler: tuple[FakeScheduler, int]
) -> None:
    volume = await add_held_volume(db)
    request = create_request(volume)
    async with db.session() as session:
        await session.exec(delete(Volume).where(Volume.id == volume.id))  # type: ignore[arg-type]
    state = await run_create(services, request)
    assert not state.rescheduled and not state.errored
    assert driver.volumes == {}
    assert scheduler[0].creates == []
