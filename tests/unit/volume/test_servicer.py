"""The VolumeManager gRPC edge, served in-process on port 0."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import pytest

from cindermesh.db.engine import Database
from cindermesh.db.models import VolumeStatus
from cindermesh_pb.scheduler.v1 import scheduler_pb2
from cindermesh_pb.volume.v1 import volume_manager_pb2, volume_manager_pb2_grpc
from services.volume.manager import Manager
from services.volume.servicer import VolumeManagerServicer

from .helpers import OTHER_WORKER, POOL, FakeDriver, add_volume, later, reload


@pytest.fixture
async def stub(manager: Manager) -> AsyncIterator[volume_manager_pb2_grpc.VolumeManagerAsyncStub]:
    server = grpc.aio.server()
    volume_manager_pb2_grpc.add_VolumeManagerServicer_to_server(
        VolumeManagerServicer(manager), server
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        yield volume_manager_pb2_grpc.VolumeManagerStub(channel)
    await server.stop(None)


def _create(volume_id: str, host: str = POOL) -> volume_manager_pb2.ManagerCreateVolumeRequest:
    return volume_manager_pb2.ManagerCreateVolumeRequest(
        spec=scheduler_pb2.VolumeSpec(volume_id=volume_id, project_id="p", size_gb=1),
        host=host,
    )


async def test_create_is_accepted_then_completed_in_the_background(
    stub: volume_manager_pb2_grpc.VolumeManagerAsyncStub,
    manager: Manager,
    db: Database,
    driver: FakeDriver,
) -> None:
    volume = await add_volume(db, size=1)
    await stub.CreateVolume(_create(volume.id))
    await manager.join()
    row = await reload(db, volume.id)
    assert row is not None and row.status == VolumeStatus.AVAILABLE
    assert row.worker is None
    assert volume.id in driver.volumes


@pytest.mark.parametrize(
    ("status", "code"),
    [(None, grpc.StatusCode.NOT_FOUND), ("available", grpc.StatusCode.FAILED_PRECONDITION)],
)
async def test_create_refusals(
    stub: volume_manager_pb2_grpc.VolumeManagerAsyncStub,
    db: Database,
    status: str | None,
    code: grpc.StatusCode,
) -> None:
    volume_id = "missing" if status is None else (await add_volume(db, status=status)).id
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub.CreateVolume(_create(volume_id))
    assert raised.value.code() == code


async def test_create_of_a_volume_another_worker_holds_is_not_started(
    stub: volume_manager_pb2_grpc.VolumeManagerAsyncStub,
    manager: Manager,
    db: Database,
    driver: FakeDriver,
) -> None:
    lease = later(30)
    volume = await add_volume(db, worker=OTHER_WORKER, lease_expires_at=lease)
    await stub.CreateVolume(_create(volume.id))
    assert manager.busy == 0
    assert driver.created == []
    row = await reload(db, volume.id)
    assert row is not None
    assert (row.status, row.worker, row.lease_expires_at) == (
        VolumeStatus.CREATING,
        OTHER_WORKER,
        lease,
    )


async def test_create_for_another_backend_is_refused(
    stub: volume_manager_pb2_grpc.VolumeManagerAsyncStub, db: Database
) -> None:
    volume = await add_volume(db)
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub.CreateVolume(_create(volume.id, host="other@rbd-1#rbd-1"))
    assert raised.value.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_create_without_volume_id_is_invalid(
    stub: volume_manager_pb2_grpc.VolumeManagerAsyncStub,
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub.CreateVolume(_create(""))
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_delete_of_a_gone_volume_succeeds(
    stub: volume_manager_pb2_grpc.VolumeManagerAsyncStub,
) -> None:
    await stub.DeleteVolume(volume_manager_pb2.ManagerDeleteVolumeRequest(volume_id="gone"))


async def test_delete_requires_deleting(
    stub: volume_manager_pb2_grpc.VolumeManagerAsyncStub, db: Database
) -> None:
    volume = await add_volume(db, status=VolumeStatus.AVAILABLE)
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub.DeleteVolume(volume_manager_pb2.ManagerDeleteVolumeRequest(volume_id=volume.id))
    assert raised.value.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_delete_is_accepted_then_completed(
    stub: volume_manager_pb2_grpc.VolumeManagerAsyncStub, manager: Manager, db: Database
) -> None:
    volume = await add_volume(db, status=VolumeStatus.DELETING)
    await stub.DeleteVolume(volume_manager_pb2.ManagerDeleteVolumeRequest(volume_id=volume.id))
    await manager.join()
    assert await reload(db, volume.id) is None
