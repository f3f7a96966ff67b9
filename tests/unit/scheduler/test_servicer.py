"""The Scheduler service over real gRPC: a fake volume manager server whose capabilities the
scheduler watches (found in the services table), a real SQLite database."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import grpc
import pytest

from cindermesh.db.engine import Database
from cindermesh.db.models import Service, VolumeStatus
from cindermesh.settings import SchedulerSettings
from cindermesh_pb.scheduler.v1 import scheduler_pb2, scheduler_pb2_grpc
from cindermesh_pb.volume.v1 import volume_manager_pb2, volume_manager_pb2_grpc
from services.scheduler.backend_state import BackendStates
from services.scheduler.backend_watch import BackendWatcher
from services.scheduler.manager_client import GrpcVolumeManagers
from services.scheduler.scheduling import Scheduler, SchedulerConfig
from services.scheduler.servicer import SchedulerServicer

from .conftest import (
    SERVICE_UUID,
    USAGE,
    add_volume,
    ago,
    get_volume,
    released_once,
    update_row,
    usages,
)
from .factories import backend_report

POOL_ID = "node1@file-1#pool1"


class FakeVolumeManager(volume_manager_pb2_grpc.VolumeManagerServicer):
    """Records what it was asked to create; answers ``refuse`` (a status code) if set; its
    capability watch sends one report and stays open until ``hang_up`` is set."""

    def __init__(self) -> None:
        self.created: list[volume_manager_pb2.ManagerCreateVolumeRequest] = []
        self.called = asyncio.Event()
        self.refuse: grpc.StatusCode | None = None
        self.hang_up = asyncio.Event()

    async def WatchCapabilities(self, request, context):  # type: ignore[no-untyped-def]
        yield _report()
        await self.hang_up.wait()

    async def CreateVolume(self, request, context):  # type: ignore[no-untyped-def]
        self.created.append(request)
        self.called.set()
        if self.refuse is not None:
            await context.abort(self.refuse, "not mine")
        return volume_manager_pb2.ManagerCreateVolumeResponse()

    async def DeleteVolume(self, request, context):  # type: ignore[no-untyped-def]
        return volume_manager_pb2.ManagerDeleteVolumeResponse()


@dataclass
class Harness:
    stub: scheduler_pb2_grpc.SchedulerStub
    scheduler: Scheduler
    manager: FakeVolumeManager
    manager_address: str
    watcher: BackendWatcher


async def _server(register: Callable[[grpc.aio.Server], None]) -> tuple[grpc.aio.Server, str]:
    server = grpc.aio.server()
    register(server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    return server, f"127.0.0.1:{port}"


@pytest.fixture
def config() -> SchedulerConfig:
    return SchedulerConfig()


@pytest.fixture
async def harness(db: Database, config: SchedulerConfig) -> AsyncIterator[Harness]:
    manager = FakeVolumeManager()
    manager_server, manager_address = await _server(
        lambda s: volume_manager_pb2_grpc.add_VolumeManagerServicer_to_server(manager, s)
    )
    managers = GrpcVolumeManagers(timeout=5.0)
    states = BackendStates()
    scheduler = Scheduler(states, db, managers, config)
    watcher = BackendWatcher(states, db, SchedulerSettings(discovery_interval=0.05))
    server, address = await _server(
        lambda s: scheduler_pb2_grpc.add_SchedulerServicer_to_server(
            SchedulerServicer(scheduler), s
        )
    )
    channel = grpc.aio.insecure_channel(address)
    yield Harness(
        scheduler_pb2_grpc.SchedulerStub(channel), scheduler, manager, manager_address, watcher
    )
    await watcher.stop()
    await scheduler.close()
    await managers.close()
    await channel.close()
    await server.stop(None)
    await manager_server.stop(None)


def _report() -> volume_manager_pb2.CapabilityReport:
    return volume_manager_pb2.CapabilityReport(
        backend="node1@file-1",
        volume_backend_name="file-1",
        availability_zone="nova",
        pools=[
            volume_manager_pb2.PoolCapabilities(
                pool_name="pool1",
                total_capacity_gb=volume_manager_pb2.Capacity(gb=100),
                free_capacity_gb=volume_manager_pb2.Capacity(gb=100),
                thin_provisioning_support=True,
                max_over_subscription_ratio=20,
            )
        ],
        manager_incarnation="incarnation-1",
        sequence=1,
    )


async def _watch(harness: Harness, db: Database, address: str) -> None:
    """Points the backend's services row at ``address`` and watches it until it reported."""
    async with db.session() as session:
        row = await session.get(Service, "node1@file-1")
        assert row is not None
        row.address = address
    harness.watcher.start()
    await _until(lambda: harness.scheduler.states.pool(POOL_ID) is not None)


def _create(volume_id: str, size: int = 10) -> scheduler_pb2.ScheduleVolumeRequest:
    return scheduler_pb2.ScheduleVolumeRequest(
        spec=scheduler_pb2.VolumeSpec(
            volume_id=volume_id,
            project_id="p1",
            size_gb=size,
            availability_zone="nova",
            volume_type=scheduler_pb2.VolumeTypeSpec(id="t", name="__DEFAULT__"),
        )
    )


async def _until(condition: Callable[[], bool]) -> None:
    async with asyncio.timeout(5):
        while not condition():
            await asyncio.sleep(0.01)


async def test_reported_backend_gets_the_volume(harness: Harness, db: Database) -> None:
    await _watch(harness, db, harness.manager_address)
    state = harness.scheduler.states.pool(POOL_ID)
    assert state is not None and state.address == harness.manager_address
    await add_volume(db, "vol-1")

    await harness.stub.CreateVolume(_create("vol-1"))
    async with asyncio.timeout(5):
        await harness.manager.called.wait()

    (sent,) = harness.manager.created
    assert (sent.host, sent.spec.volume_id, sent.spec.size_gb) == (POOL_ID, "vol-1", 10)
    assert (sent.retry.num_attempts, list(sent.retry.hosts)) == (0, [])
    row = await get_volume(db, "vol-1")
    assert (row.host, row.service_uuid, row.status) == (POOL_ID, SERVICE_UUID, "creating")

    harness.manager.hang_up.set()  # the watch ends: the backend is gone
    await _until(lambda: harness.scheduler.states.pools() == [])


async def test_no_backend_defers_the_volume_then_errors_it_and_gives_quota_back_once(
    harness: Harness, db: Database
) -> None:
    await add_volume(db, "vol-2")
    await harness.stub.CreateVolume(_create("vol-2"))
    await harness.scheduler.close()
    row = await get_volume(db, "vol-2")
    # Deferred: waiting for a backend (the sweep offers it again), nothing given back.
    assert (row.status, row.host, row.error_reason, row.quota_held) == (
        VolumeStatus.CREATING,
        None,
        None,
        True,
    )
    assert await usages(db) == USAGE

    await update_row(db, "vol-2", created_at=ago(3600))  # past placement_timeout
    for _ in range(2):
        await harness.stub.CreateVolume(_create("vol-2"))
        await harness.scheduler.close()

    row = await get_volume(db, "vol-2")
    assert row.status == VolumeStatus.ERROR
    assert row.error_reason is not None
    assert row.error_reason.startswith("No valid backend was found.")
    assert (row.host, row.quota_held) == (None, False)
    assert await usages(db) == released_once()
    assert harness.manager.created == []


@pytest.mark.parametrize(
    "config", [SchedulerConfig(max_attempts=3, handoff_timeout=0.2, handoff_backoff_max=0.05)]
)
async def test_unreachable_manager_is_retried_then_the_volume_errors_and_frees_capacity(
    harness: Harness, db: Database
) -> None:
    # Reported, then unreachable for the hand-off.
    harness.scheduler.states.update(backend_report(address="127.0.0.1:1"), object())
    await add_volume(db, "vol-3")

    await harness.stub.CreateVolume(_create("vol-3"))
    await _until(lambda: not harness.scheduler.in_flight("vol-3"))

    row = await get_volume(db, "vol-3")
    # Taken back after each hand-off deadline and placed again (the only pool) until the
    # attempts ran out.
    assert (row.status, row.host, row.quota_held) == (VolumeStatus.ERROR, None, False)
    assert (row.schedule_attempts, row.tried_hosts) == (3, POOL_ID)
    assert row.last_error is not None and "did not accept" in row.last_error
    assert row.error_reason == (
        "No valid backend was found. Exceeded max scheduling attempts 3 for resource vol-3"
    )
    assert await usages(db) == released_once()


async def test_refusing_manager_leaves_the_row_as_it_is(harness: Harness, db: Database) -> None:
    harness.manager.refuse = grpc.StatusCode.FAILED_PRECONDITION
    await _watch(harness, db, harness.manager_address)
    await add_volume(db, "vol-4")

    await harness.stub.CreateVolume(_create("vol-4"))
    await _until(lambda: not harness.scheduler.in_flight("vol-4"))

    assert len(harness.manager.created) == 1  # not tried again
    row = await get_volume(db, "vol-4")
    assert (row.status, row.host, row.schedule_attempts) == (VolumeStatus.CREATING, POOL_ID, 0)
    assert (row.error_reason, row.quota_held) == (None, True)


@pytest.mark.parametrize(
    "spec",
    [
        scheduler_pb2.VolumeSpec(project_id="p1", size_gb=1),
        scheduler_pb2.VolumeSpec(volume_id="v", size_gb=1),
        scheduler_pb2.VolumeSpec(volume_id="v", project_id="p1", size_gb=0),
    ],
)
async def test_invalid_request_is_refused(harness: Harness, spec: scheduler_pb2.VolumeSpec) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await harness.stub.CreateVolume(scheduler_pb2.ScheduleVolumeRequest(spec=spec))
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
