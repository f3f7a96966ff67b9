"""The hand-over protocol on the volume row (``cindermesh.db.work``) as the scheduler sees it:
conditional placements, taking a volume back, and races with the volume managers."""

from __future__ import annotations

import asyncio

import pytest

from cindermesh.db.engine import Database
from cindermesh.db.models import VolumeStatus, utcnow
from cindermesh.errors import BackendUnavailable
from cindermesh.placement import PlacementAttempt
from cindermesh.settings import WorkSettings
from services.scheduler import volume_rows
from services.scheduler.spec import RetryState, VolumeSpec
from services.scheduler.sweep import Sweep
from services.volume import store
from services.volume.errors import VolumeStateChanged

from .conftest import add_volume, ago, get_volume, later, update_row
from .fakes import A, B, FakeManagers, free, make_scheduler, report_a, request

BACKEND_A = "node1@file-1"
WORKER = f"{BACKEND_A}/w1"


async def claim(db: Database, volume_id: str, worker: str = WORKER) -> object:
    """The volume manager of A claiming the volume (``Manager.accept_create``)."""
    return await store.claim(db, volume_id, VolumeStatus.CREATING, BACKEND_A, worker, 60.0)


async def test_racing_schedulers_place_a_volume_once(db: Database) -> None:
    """Two scheduler replicas offered the same volume (a retried request, or two sweeps)."""
    managers = [FakeManagers(), FakeManagers()]
    schedulers = [make_scheduler(db, m) for m in managers]
    await add_volume(db, "v1")
    await asyncio.gather(*(s.schedule(request("v1")) for s in schedulers))
    assert sorted(len(m.sent) for m in managers) == [0, 1]
    winner = 0 if managers[0].sent else 1
    # One claim, in the database: both replicas see it.
    assert await free(db, schedulers[winner], A) == 190.0
    assert await free(db, schedulers[1 - winner], A) == 190.0
    row = await get_volume(db, "v1")
    assert (row.status, row.host, row.schedule_attempts) == (VolumeStatus.CREATING, A, 0)


async def test_a_manager_claim_beats_a_later_take_back(db: Database) -> None:
    await add_volume(db, "v1")
    await update_row(db, "v1", host=A, lease_expires_at=later(30))
    assert await claim(db, "v1") is not None
    for lapsed_only in (True, False):
        assert await volume_rows.take_back(db, "v1", A, 0, "late", lapsed_only) is None
    row = await get_volume(db, "v1")
    assert (row.host, row.worker, row.schedule_attempts, row.tried_hosts) == (A, WORKER, 0, "")


async def test_a_take_back_beats_a_later_manager_claim(db: Database) -> None:
    await add_volume(db, "v1")
    await update_row(db, "v1", host=A, lease_expires_at=ago(1))  # hand-off deadline passed
    retry = await volume_rows.take_back(db, "v1", A, 0, "too late", lapsed_only=True)
    assert retry == RetryState(1, (A,), "too late")
    with pytest.raises(VolumeStateChanged):
        await claim(db, "v1")
    row = await get_volume(db, "v1")
    assert (row.status, row.host, row.worker, row.lease_expires_at) == (
        VolumeStatus.CREATING,
        None,
        None,
        None,
    )
    assert (row.schedule_attempts, row.tried_hosts, row.last_error) == (1, A, "too late")


async def test_a_live_hand_off_deadline_is_not_taken_back_by_a_sweep(db: Database) -> None:
    await add_volume(db, "v1")
    await update_row(db, "v1", host=A, lease_expires_at=later(30))
    assert await volume_rows.take_back(db, "v1", A, 0, "early", lapsed_only=True) is None
    row = await get_volume(db, "v1")
    assert (row.host, row.schedule_attempts) == (A, 0)


async def test_a_lapsed_worker_lease_is_taken_back(db: Database) -> None:
    """The manager died (or stopped renewing): its volume is placed again, and what the
    manager writes afterwards is refused."""
    await add_volume(db, "v1")
    await update_row(db, "v1", host=A)
    assert await claim(db, "v1") is not None
    await update_row(db, "v1", lease_expires_at=ago(1))
    assert await volume_rows.take_back(db, "v1", A, 0, "lapsed", lapsed_only=True) is not None
    with pytest.raises(VolumeStateChanged):
        await store.mark_available(db, "v1", WORKER, None)
    row = await get_volume(db, "v1")
    assert (row.status, row.host, row.worker, row.schedule_attempts) == (
        VolumeStatus.CREATING,
        None,
        None,
        1,
    )


async def test_take_back_racing_a_manager_claim_has_one_winner(db: Database) -> None:
    for i in range(10):
        volume_id = f"v{i}"
        await add_volume(db, volume_id)
        await update_row(db, volume_id, host=A, lease_expires_at=ago(1))
        claimed, taken = await asyncio.gather(
            claim(db, volume_id),
            volume_rows.take_back(db, volume_id, A, 0, "lapsed", lapsed_only=True),
            return_exceptions=True,
        )
        row = await get_volume(db, volume_id)
        if isinstance(claimed, VolumeStateChanged):
            assert taken is not None
            assert (row.host, row.worker, row.schedule_attempts) == (None, None, 1)
        else:
            assert claimed is not None and taken is None
            assert (row.host, row.worker, row.schedule_attempts) == (A, WORKER, 0)
            assert row.lease_expires_at is not None and row.lease_expires_at > utcnow()


async def test_claim_and_record_is_conditional(db: Database) -> None:
    managers = FakeManagers()
    scheduler = make_scheduler(db, managers)
    pool = scheduler.states.pool(A)
    assert pool is not None
    spec = VolumeSpec(volume_id="v1", project_id="p1", size_gb=10)
    await add_volume(db, "v1")
    decision = PlacementAttempt(
        attempt=1,
        decided_at=utcnow(),
        scheduler="s1",
        request={},
        disabled=(),
        filters=(),
        weighed=(),
        chosen=None,
        result="placed",
        reason="",
        last_filter=None,
        retry_hosts=(),
        last_error="",
    )

    async def record(attempts: int) -> object:
        return await volume_rows.claim_and_record(
            db, spec, [pool], lambda _: None, attempts, 30.0, decision
        )

    with pytest.raises(volume_rows.VolumeGone):
        await record(1)  # attempts do not match
    await record(0)
    row = await get_volume(db, "v1")
    assert row.host == A
    assert row.lease_expires_at is not None and row.lease_expires_at > later(25)
    with pytest.raises(volume_rows.VolumeGone):
        await record(0)  # placed already


class _SlowManagers(FakeManagers):
    """A manager the scheduler cannot reach: the first try fails at once, the next ones
    only once ``gate`` is set (a call timing out)."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()

    async def create_volume(self, address, spec, host, retry):  # type: ignore[no-untyped-def]
        self.tries.append(address)
        if len(self.tries) > 1:
            await self.gate.wait()
        raise BackendUnavailable(f"{address} is down")


class _BlockedManagers(FakeManagers):
    """A manager that accepts only once ``gate`` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()

    async def create_volume(self, address, spec, host, retry):  # type: ignore[no-untyped-def]
        self.tries.append(address)
        await self.gate.wait()
        await super().create_volume(address, spec, host, retry)


async def test_a_late_hand_off_failure_leaves_another_replicas_new_placement(
    db: Database,
) -> None:
    # A one-backend deployment with two scheduler replicas.
    slow, blocked = _SlowManagers(), _BlockedManagers()
    first = make_scheduler(db, slow, handoff_timeout=0.1, reported=False)
    second = make_scheduler(db, blocked, handoff_timeout=30.0, reported=False)
    report_a(first.states)
    report_a(second.states)
    await add_volume(db, "v1")

    task = first.submit(request("v1"))
    await asyncio.sleep(0.3)  # the row's hand-off deadline passed; first still tries
    assert not task.done()
    # The second replica's sweep takes the volume back and places it again (on A).
    assert await Sweep(second, db, WorkSettings(unplaced_grace=60)).sweep_once() == 1
    await asyncio.sleep(0.1)
    row = await get_volume(db, "v1")
    assert (row.host, row.schedule_attempts) == (A, 1)
    assert blocked.tries == ["a"]

    slow.gate.set()  # the first replica's last try fails: it gives up on its placement
    await asyncio.wait_for(task, 5)
    blocked.gate.set()
    await second.close()

    row = await get_volume(db, "v1")
    assert (row.status, row.host, row.schedule_attempts) == (VolumeStatus.CREATING, A, 1)


async def test_capacity_is_given_back_to_the_pool_tried_last(db: Database) -> None:
    managers = FakeManagers()
    scheduler = make_scheduler(db, managers, max_attempts=3, handoff_timeout=0.1)
    await add_volume(db, "v1")
    managers.down.update({"a", "b"})
    await asyncio.wait_for(scheduler.schedule(request("v1")), 5)
    # Attempts: A, then B (untried), then A again (every pool tried; A has more room).
    assert [t for i, t in enumerate(managers.tries) if i == 0 or managers.tries[i - 1] != t] == [
        "a",
        "b",
        "a",
    ]
    row = await get_volume(db, "v1")
    assert (row.status, row.schedule_attempts) == (VolumeStatus.ERROR, 3)
    assert (await free(db, scheduler, A), await free(db, scheduler, B)) == (200.0, 100.0)
