from __future__ import annotations

from pathlib import Path

from cindermesh.db.engine import Database
from cindermesh.db.models import VolumeStatus
from services.volume import store
from services.volume.create_flow import FlowServices, run_create
from services.volume.domain import RetryState
from services.volume.scheduler_client import SchedulerClient

from .helpers import (
    POOL,
    FakeDriver,
    FakeScheduler,
    add_volume,
    create_request,
    reload,
    usage,
)


async def test_success_makes_the_volume_available(
    services: FlowServices, db: Database, driver: FakeDriver
) -> None:
    volume = await add_volume(db, size=4)
    state = await run_create(services, create_request(volume))
    row = await reload(db, volume.id)
    assert row is not None
    assert row.status == VolumeStatus.AVAILABLE
    assert row.launched_at is not None and row.updated_at is not None
    assert row.service_uuid == "service-uuid-1"
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
    volume = await add_volume(db, size=2)
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
    assert row.status == VolumeStatus.CREATING
    assert row.host is None
    assert row.quota_held
    assert driver.deleted == [volume.id]  # a partly created image is removed


async def test_attempts_exhausted_ends_in_error_and_releases_quota_once(
    services: FlowServices,
    db: Database,
    driver: FakeDriver,
    scheduler: tuple[FakeScheduler, int],
) -> None:
    fake, _ = scheduler
    driver.fail_create = "no space"
    volume = await add_volume(db, size=3)
    before = await usage(db)
    retry = RetryState(num_attempts=2, hosts=("other@b#b", "third@c#c"))
    state = await run_create(services, create_request(volume, retry=retry))
    assert state.errored and not state.rescheduled
    assert fake.creates == []
    row = await reload(db, volume.id)
    assert row is not None
    assert row.status == VolumeStatus.ERROR
    assert row.error_reason is not None and "Exceeded max scheduling attempts 3" in row.error_reason
    assert "no space" in row.error_reason
    assert not row.quota_held
    assert await usage(db) == before - 3
    assert await usage(db, "volumes") == 0
    # Marking it error again (a duplicate failure report) gives nothing back again.
    assert await store.mark_error(db, volume.id, "again", only_if_status=VolumeStatus.ERROR)
    await run_create(services, create_request(volume, retry=retry))
    assert await usage(db) == before - 3
    assert await usage(db, "volumes") == 0


async def test_volume_deleted_meanwhile_is_neither_rescheduled_nor_errored(
    services: FlowServices, db: Database, driver: FakeDriver, scheduler: tuple[FakeScheduler, int]
) -> None:
    fake, _ = scheduler
    volume = await add_volume(db)
    original = driver.create_volume

    async def create_then_user_deletes(volume_id: str, size_gb: int) -> None:
        await original(volume_id, size_gb)
        await store.set_status(db, volume_id, VolumeStatus.CREATING, VolumeStatus.DELETING)

    driver.create_volume = create_then_user_deletes  # type: ignore[method-assign]
    state = await run_create(services, create_request(volume))
    assert not state.rescheduled and not state.errored
    assert fake.creates == []
    assert driver.volumes == {}  # the image is removed again
    row = await reload(db, volume.id)
    assert row is not None and row.status == VolumeStatus.DELETING


async def test_unreachable_scheduler_ends_in_error(
    tmp_path: Path, db: Database, driver: FakeDriver
) -> None:
    from cindermesh.grpc_server import insecure_channel

    channel = insecure_channel("127.0.0.1:1")
    services = FlowServices(
        db=db, driver=driver, scheduler=SchedulerClient(channel), max_attempts=3
    )
    driver.fail_create = "boom"
    volume = await add_volume(db, size=1)
    state = await run_create(services, create_request(volume))
    await channel.close(None)
    assert state.errored
    row = await reload(db, volume.id)
    assert row is not None and row.status == VolumeStatus.ERROR
    assert row.error_reason is not None and "Rescheduling failed" in row.error_reason
    assert not row.quota_held


async def test_missing_row_fails_without_side_effects(
    services: FlowServices, db: Database, driver: FakeDriver, scheduler: tuple[FakeScheduler, int]
) -> None:
    volume = await add_volume(db)
    request = create_request(volume)
    await store.destroy_volume(db, volume.id)
    state = await run_create(services, request)
    assert not state.rescheduled and not state.errored
    assert driver.volumes == {}
    assert scheduler[0].creates == []
