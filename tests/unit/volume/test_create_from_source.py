"""The manager's create flow for volumes made from a snapshot or from another volume."""

from __future__ import annotations

import logging
from dataclasses import replace

import pytest

from cindermesh.db.engine import Database
from cindermesh.db.models import Snapshot, SnapshotStatus, VolumeStatus
from cindermesh_pb.scheduler.v1 import scheduler_pb2
from cindermesh_pb.volume.v1 import volume_manager_pb2
from services.volume.create_flow import SNAP, SOURCE_VOL, FlowServices, run_create
from services.volume.drivers.base import SnapshotRef, SourceVolumeRef
from services.volume.scheduler_client import to_volume_spec
from services.volume.servicer import create_request_from_proto

from .helpers import (
    BACKEND_HOST,
    POOL,
    PROJECT,
    FakeDriver,
    FakeScheduler,
    add_held_volume,
    add_volume,
    create_request,
    reload,
    update_row,
)


class CloningDriver(FakeDriver):
    """FakeDriver with the two creates from a source, recorded."""

    def __init__(self) -> None:
        super().__init__()
        self.from_snapshots: list[tuple[str, int, SnapshotRef]] = []
        self.clones: list[tuple[str, int, SourceVolumeRef]] = []

    async def create_volume_from_snapshot(
        self, volume_id: str, size_gb: int, snapshot: SnapshotRef
    ) -> None:
        await super().create_volume(volume_id, size_gb)
        self.from_snapshots.append((volume_id, size_gb, snapshot))

    async def create_cloned_volume(
        self, volume_id: str, size_gb: int, source: SourceVolumeRef
    ) -> None:
        await super().create_volume(volume_id, size_gb)
        self.clones.append((volume_id, size_gb, source))


@pytest.fixture
def cloning(services: FlowServices) -> tuple[FlowServices, CloningDriver]:
    driver = CloningDriver()
    return replace(services, driver=driver), driver


async def add_snapshot(db: Database, volume_id: str, size: int) -> Snapshot:
    snapshot = Snapshot(
        project_id=PROJECT,
        user_id="user-1",
        volume_id=volume_id,
        volume_size=size,
        status=SnapshotStatus.AVAILABLE,
    )
    async with db.session() as session:
        session.add(snapshot)
    return snapshot


async def test_from_snapshot_is_a_snap_spec_and_calls_the_snapshot_clone(
    cloning: tuple[FlowServices, CloningDriver], db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    services, driver = cloning
    origin = await add_volume(db, size=2, status=VolumeStatus.AVAILABLE)
    snapshot = await add_snapshot(db, origin.id, 2)
    volume = await add_held_volume(db, size=3)
    await update_row(db, volume.id, snapshot_id=snapshot.id)
    caplog.set_level(logging.INFO)
    state = await run_create(services, create_request(volume))
    assert state.spec is not None and state.spec.type == SNAP
    assert driver.from_snapshots == [
        (volume.id, 3, SnapshotRef(id=snapshot.id, volume_id=origin.id, volume_size_gb=2))
    ]
    assert driver.clones == [] and driver.created == [volume.id]
    row = await reload(db, volume.id)
    assert row is not None and row.status == VolumeStatus.AVAILABLE
    assert (
        f"Volume {volume.id}: being created as snap with specification: "
        f"{{'status': 'creating', 'volume_id': '{volume.id}', 'volume_name': "
        f"'volume-{volume.id}', 'volume_size': 3, 'snapshot_id': '{snapshot.id}'}}"
    ) in caplog.messages


async def test_from_volume_is_a_source_vol_spec_and_calls_the_volume_clone(
    cloning: tuple[FlowServices, CloningDriver], db: Database
) -> None:
    services, driver = cloning
    source = await add_volume(db, size=2, status=VolumeStatus.IN_USE)
    volume = await add_held_volume(db, size=2)
    await update_row(db, volume.id, source_volid=source.id)
    state = await run_create(services, create_request(volume))
    assert state.spec is not None and state.spec.type == SOURCE_VOL
    assert state.spec.source_volstatus == VolumeStatus.IN_USE
    assert state.spec.specification()["source_volid"] == source.id
    assert driver.clones == [(volume.id, 2, SourceVolumeRef(id=source.id, size_gb=2))]
    assert driver.from_snapshots == []


async def test_a_source_gone_is_an_error_without_reschedule(
    cloning: tuple[FlowServices, CloningDriver],
    db: Database,
    scheduler: tuple[FakeScheduler, int],
) -> None:
    services, driver = cloning
    volume = await add_held_volume(db, size=2)
    await update_row(db, volume.id, snapshot_id="no-such-snapshot")
    state = await run_create(services, create_request(volume))
    assert state.errored and not state.rescheduled
    assert scheduler[0].creates == []
    row = await reload(db, volume.id)
    assert row is not None and row.status == VolumeStatus.ERROR
    assert row.error_reason is not None
    assert "Snapshot no-such-snapshot could not be found." in row.error_reason
    assert driver.created == [] and driver.deleted == []


async def test_a_failed_clone_removes_the_image_and_the_reschedule_stays_pinned(
    cloning: tuple[FlowServices, CloningDriver],
    db: Database,
    scheduler: tuple[FakeScheduler, int],
) -> None:
    services, driver = cloning
    source = await add_volume(db, size=2, status=VolumeStatus.AVAILABLE)
    volume = await add_held_volume(db, size=2)
    await update_row(db, volume.id, source_volid=source.id)
    driver.fail_create = "clone failed"
    request = replace(create_request(volume), source_volid=source.id)
    state = await run_create(services, request)
    assert state.rescheduled
    assert driver.deleted == [volume.id]
    [sent] = scheduler[0].creates
    assert (sent.spec.source_volid, sent.spec.source_backend) == (source.id, BACKEND_HOST)


def test_the_manager_request_carries_the_source() -> None:
    proto = volume_manager_pb2.ManagerCreateVolumeRequest(
        spec=scheduler_pb2.VolumeSpec(
            volume_id="v1",
            project_id=PROJECT,
            size_gb=1,
            snapshot_id="s1",
            source_backend=BACKEND_HOST,
        ),
        host=POOL,
    )
    request = create_request_from_proto(proto)
    assert (request.snapshot_id, request.source_volid) == ("s1", "")
    assert request.source_backend == BACKEND_HOST
    assert to_volume_spec(request).snapshot_id == "s1"
    raw = replace(request, snapshot_id="")
    assert raw.source_backend == "" and to_volume_spec(raw).source_backend == ""
