"""Claims on the volume row: who may work on a volume, and the manager's sweep."""

from __future__ import annotations

import asyncio

import pytest

from cindermesh.db.engine import Database
from cindermesh.db.models import VolumeStatus, utcnow
from services.volume import store
from services.volume.create_flow import FlowServices
from services.volume.errors import VolumeNotFound, VolumeStateChanged
from services.volume.manager import Manager, ManagerTiming

from .helpers import (
    BACKEND_HOST,
    LEASE,
    OTHER_WORKER,
    POOL,
    WORKER,
    FakeDriver,
    add_volume,
    ago,
    create_request,
    later,
    reload,
)


async def test_racing_claims_have_exactly_one_winner(db: Database) -> None:
    volume = await add_volume(db)
    workers = [f"{BACKEND_HOST}/w{i}" for i in range(5)]
    results = await asyncio.gather(
        *(
            store.claim(db, volume.id, VolumeStatus.CREATING, BACKEND_HOST, worker, LEASE)
            for worker in workers
        )
    )
    winners = [worker for worker, result in zip(workers, results, strict=True) if result]
    assert len(winners) == 1
    row = await reload(db, volume.id)
    assert row is not None and row.worker == winners[0]
    assert row.lease_expires_at is not None and row.lease_expires_at > utcnow()


async def test_a_live_lease_cannot_be_taken(db: Database) -> None:
    lease = later(30)
    volume = await add_volume(db, worker=OTHER_WORKER, lease_expires_at=lease)
    assert (
        await store.claim(db, volume.id, VolumeStatus.CREATING, BACKEND_HOST, WORKER, LEASE) is None
    )
    row = await reload(db, volume.id)
    assert row is not None and (row.worker, row.lease_expires_at) == (OTHER_WORKER, lease)


async def test_a_lapsed_lease_can_be_taken(db: Database) -> None:
    volume = await add_volume(db, worker=OTHER_WORKER, lease_expires_at=ago(1))
    claimed = await store.claim(db, volume.id, VolumeStatus.CREATING, BACKEND_HOST, WORKER, LEASE)
    assert claimed is not None and claimed.worker == WORKER
    row = await reload(db, volume.id)
    assert row is not None and row.worker == WORKER
    assert row.lease_expires_at is not None and row.lease_expires_at > utcnow()


async def test_the_holder_may_claim_again(db: Database) -> None:
    volume = await add_volume(db, worker=WORKER, lease_expires_at=later(30))
    claimed = await store.claim(db, volume.id, VolumeStatus.CREATING, BACKEND_HOST, WORKER, LEASE)
    assert claimed is not None and claimed.worker == WORKER


@pytest.mark.parametrize(
    ("status", "host"),
    [
        (VolumeStatus.AVAILABLE, POOL),  # done already
        (VolumeStatus.CREATING, None),  # handed back: the schedulers' now
        (VolumeStatus.CREATING, "node2@file-2#file-2"),  # placed on another backend
    ],
)
async def test_only_this_backends_work_in_the_expected_state_is_claimed(
    db: Database, status: str, host: str | None
) -> None:
    volume = await add_volume(db, status=status, host=host)
    with pytest.raises(VolumeStateChanged):
        await store.claim(db, volume.id, VolumeStatus.CREATING, BACKEND_HOST, WORKER, LEASE)
    row = await reload(db, volume.id)
    assert row is not None and row.worker is None


async def test_claiming_a_missing_volume(db: Database) -> None:
    with pytest.raises(VolumeNotFound):
        await store.claim(db, "missing", VolumeStatus.CREATING, BACKEND_HOST, WORKER, LEASE)


async def test_writes_of_a_worker_that_lost_the_volume_are_refused(db: Database) -> None:
    volume = await add_volume(db, worker=OTHER_WORKER, lease_expires_at=later(30))
    with pytest.raises(VolumeStateChanged):
        await store.mark_available(db, volume.id, WORKER, "uuid")
    assert not await store.mark_error(db, volume.id, "boom", WORKER)
    assert await store.hand_back(db, volume.id, WORKER, POOL, "boom") is None
    assert not await store.set_status(
        db, volume.id, VolumeStatus.CREATING, VolumeStatus.ERROR, WORKER
    )
    row = await reload(db, volume.id)
    assert row is not None
    assert (row.status, row.host, row.worker) == (VolumeStatus.CREATING, POOL, OTHER_WORKER)
    assert (row.schedule_attempts, row.tried_hosts, row.quota_held) == (0, "", True)


async def test_renew_extends_only_the_workers_own_leases(db: Database) -> None:
    mine = await add_volume(db, worker=WORKER, lease_expires_at=later(1))
    theirs = await add_volume(db, worker=OTHER_WORKER, lease_expires_at=later(1))
    assert await store.renew(db, WORKER, [mine.id, theirs.id], 600) == 1
    mine_row, theirs_row = await reload(db, mine.id), await reload(db, theirs.id)
    assert mine_row is not None and mine_row.lease_expires_at is not None
    assert theirs_row is not None and theirs_row.lease_expires_at is not None
    assert mine_row.lease_expires_at > later(500)
    assert theirs_row.lease_expires_at < later(2)


async def test_two_managers_racing_for_a_volume_create_it_once(
    services: FlowServices, db: Database, driver: FakeDriver
) -> None:
    """Two replicas (or a run and its restart) both asked to create the same volume."""
    volume = await add_volume(db, size=2)
    release = asyncio.Event()
    original = driver.create_volume

    async def slow_create(volume_id: str, size_gb: int) -> None:
        await release.wait()
        await original(volume_id, size_gb)

    driver.create_volume = slow_create  # type: ignore[method-assign]
    first = Manager(services, BACKEND_HOST)
    second = Manager(
        FlowServices(db=db, driver=driver, scheduler=services.scheduler, worker=OTHER_WORKER),
        BACKEND_HOST,
    )
    request = create_request(volume)
    await asyncio.gather(first.accept_create(request), second.accept_create(request))
    assert first.busy + second.busy == 1
    held = await reload(db, volume.id)
    assert held is not None and held.worker == (WORKER if first.busy else OTHER_WORKER)
    release.set()
    await asyncio.gather(first.join(), second.join())
    assert driver.created == [volume.id]
    row = await reload(db, volume.id)
    assert row is not None and row.status == VolumeStatus.AVAILABLE
    assert row.worker is None


async def test_sweep_takes_this_backends_unheld_work_only(
    manager: Manager, db: Database, driver: FakeDriver
) -> None:
    never_arrived = await add_volume(db, size=1, lease_expires_at=later(30))  # hand-off RPC lost
    lapsed = await add_volume(db, size=1, worker=OTHER_WORKER, lease_expires_at=ago(1))
    deleting = await add_volume(db, status=VolumeStatus.DELETING)  # marked while we were down
    live = await add_volume(db, worker=OTHER_WORKER, lease_expires_at=later(30))
    unplaced = await add_volume(db, host=None)
    elsewhere = await add_volume(db, host="node2@file-2#file-2")
    driver.volumes[deleting.id] = 2

    await manager.sweep_once()
    await manager.join()

    for created in (never_arrived, lapsed):
        row = await reload(db, created.id)
        assert row is not None and row.status == VolumeStatus.AVAILABLE
        assert row.worker is None
    assert await reload(db, deleting.id) is None
    for untouched, worker in ((live, OTHER_WORKER), (unplaced, None), (elsewhere, None)):
        row = await reload(db, untouched.id)
        assert row is not None
        assert (row.status, row.worker) == (VolumeStatus.CREATING, worker)
    assert sorted(driver.created) == sorted([never_arrived.id, lapsed.id])
    assert sorted(driver.volumes) == sorted([never_arrived.id, lapsed.id])


async def test_maintenance_renews_the_lease_of_work_in_progress(
    services: FlowServices, db: Database, driver: FakeDriver
) -> None:
    manager = Manager(services, BACKEND_HOST, timing=ManagerTiming(lease=0.6, sweep_interval=0.05))
    volume = await add_volume(db)
    release = asyncio.Event()
    original = driver.create_volume

    async def slow_create(volume_id: str, size_gb: int) -> None:
        await release.wait()
        await original(volume_id, size_gb)

    driver.create_volume = slow_create  # type: ignore[method-assign]
    await manager.accept_create(create_request(volume))
    manager.start_maintenance()
    try:
        await asyncio.sleep(1.5)  # well past the first lease
        row = await reload(db, volume.id)
        assert row is not None and row.worker == WORKER
        assert row.lease_expires_at is not None and row.lease_expires_at > utcnow()
        # Nobody else may take it while the lease is renewed.
        assert (
            await store.claim(
                db, volume.id, VolumeStatus.CREATING, BACKEND_HOST, OTHER_WORKER, LEASE
            )
            is None
        )
    finally:
        release.set()
        await manager.stop(grace=5)
    row = await reload(db, volume.id)
    assert row is not None and row.status == VolumeStatus.AVAILABLE


async def test_a_refused_create_leaves_the_volume_unclaimed(
    manager: Manager, db: Database, driver: FakeDriver
) -> None:
    volume = await add_volume(db)  # placed on POOL
    stale = create_request(volume, host=f"{BACKEND_HOST}#another-pool")
    with pytest.raises(VolumeStateChanged):
        await manager.accept_create(stale)
    assert manager.busy == 0 and driver.created == []
    row = await reload(db, volume.id)
    assert row is not None and row.worker is None
