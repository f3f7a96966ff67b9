"""Fakes and row helpers shared by the volume manager tests."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from sqlmodel import select

from cindermesh.db.engine import Database
from cindermesh.db.models import (
    DEFAULT_VOLUME_TYPE,
    QuotaUsage,
    Volume,
    VolumeMetadata,
    VolumeStatus,
    VolumeType,
    utcnow,
)
from cindermesh.db.quota import volume_deltas
from cindermesh.settings import BackendSettings, SchedulerSettings, Settings
from cindermesh_pb.scheduler.v1 import scheduler_pb2, scheduler_pb2_grpc
from services.volume import store
from services.volume.domain import CreateRequest, RetryState, VolumeTypeRef, pool_host
from services.volume.drivers.base import CapacityStats, DriverInfo
from services.volume.errors import DriverError
from tests.unit.rows import ago as ago
from tests.unit.rows import later as later
from tests.unit.rows import update_row as update_row

HOST_NAME = "node1"
BACKEND = "file-1"
POOL = pool_host(HOST_NAME, BACKEND)
BACKEND_HOST = f"{HOST_NAME}@{BACKEND}"
PROJECT = "project-1"
#: The ``worker`` of the manager under test (the ``services`` fixture's).
WORKER = f"{BACKEND_HOST}/test-worker"
#: Another run (or replica) of a manager of the same backend.
OTHER_WORKER = f"{BACKEND_HOST}/other-worker"
#: Seconds a claim made by the helpers lasts.
LEASE = 60.0


class FakeDriver:
    """Implements ``VolumeDriver`` in memory; ``fail_create`` makes creates fail."""

    def __init__(self) -> None:
        self.volumes: dict[str, int] = {}
        #: Every successful create, in order (a volume created twice appears twice).
        self.created: list[str] = []
        self.deleted: list[str] = []
        self.fail_create: str | None = None
        self.fail_delete: str | None = None

    @property
    def info(self) -> DriverInfo:
        return DriverInfo(kind="fake", vendor_name="test", driver_version="0", storage_protocol="x")

    async def do_setup(self) -> None:
        return None

    async def create_volume(self, volume_id: str, size_gb: int) -> None:
        if self.fail_create is not None:
            raise DriverError(self.fail_create)
        self.created.append(volume_id)
        self.volumes[volume_id] = size_gb

    async def delete_volume(self, volume_id: str) -> None:
        if self.fail_delete is not None:
            raise DriverError(self.fail_delete)
        self.deleted.append(volume_id)
        self.volumes.pop(volume_id, None)

    async def list_volumes(self) -> list[str]:
        return sorted(self.volumes)

    async def get_capacity(self) -> CapacityStats:
        allocated = float(sum(self.volumes.values()))
        return CapacityStats(
            total_capacity_gb=100.0,
            free_capacity_gb=100.0,
            allocated_capacity_gb=allocated,
            provisioned_capacity_gb=allocated,
            thin_provisioning_support=True,
            thick_provisioning_support=False,
            max_over_subscription_ratio=20.0,
            reserved_percentage=0,
            total_volumes=len(self.volumes),
        )

    async def close(self) -> None:
        return None


@dataclass
class FakeScheduler(scheduler_pb2_grpc.SchedulerServicer):
    creates: list[scheduler_pb2.ScheduleVolumeRequest] = field(default_factory=list)

    async def CreateVolume(
        self, request: scheduler_pb2.ScheduleVolumeRequest, context: object
    ) -> scheduler_pb2.ScheduleVolumeResponse:
        self.creates.append(request)
        return scheduler_pb2.ScheduleVolumeResponse()


async def start_fake_scheduler(
    port: int = 0,
) -> tuple[grpc.aio.Server, FakeScheduler, int]:
    fake = FakeScheduler()
    server = grpc.aio.server()
    scheduler_pb2_grpc.add_SchedulerServicer_to_server(fake, server)
    bound = server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    return server, fake, bound


def make_settings(tmp_path: Path, scheduler_port: int, max_attempts: int = 3) -> Settings:
    return Settings(
        data_dir=tmp_path,
        host_name=HOST_NAME,
        scheduler=SchedulerSettings(port=scheduler_port, scheduler_max_attempts=max_attempts),
        backends=(BackendSettings(name=BACKEND, port=0, report_interval=0.2),),
    )


async def default_type(db: Database) -> VolumeType:
    async with db.session() as session:
        found = await session.exec(select(VolumeType).where(VolumeType.name == DEFAULT_VOLUME_TYPE))
        return found.one()


async def add_volume(
    db: Database,
    size: int = 2,
    status: str = VolumeStatus.CREATING,
    host: str | None = POOL,
    metadata: dict[str, str] | None = None,
    worker: str | None = None,
    lease_expires_at: dt.datetime | None = None,
    schedule_attempts: int = 0,
    tried_hosts: tuple[str, ...] = (),
) -> Volume:
    """A row as the api and scheduler leave it, with its quota counted as in use."""
    volume_type = await default_type(db)
    volume = Volume(
        project_id=PROJECT,
        user_id="user-1",
        size=size,
        status=status,
        availability_zone="nova",
        volume_type_id=volume_type.id,
        host=host,
        worker=worker,
        lease_expires_at=lease_expires_at,
        schedule_attempts=schedule_attempts,
        tried_hosts="\n".join(tried_hosts),
    )
    async with db.session() as session:
        session.add(volume)
        for key, value in (metadata or {}).items():
            session.add(VolumeMetadata(volume_id=volume.id, key=key, value=value))
        for resource, delta in volume_deltas(size, volume_type.name).items():
            usage = await session.get(QuotaUsage, (PROJECT, resource))
            if usage is None:
                usage = QuotaUsage(project_id=PROJECT, resource=resource)
            usage.in_use += delta
            session.add(usage)
    return volume


async def claim(
    db: Database, volume_id: str, status: str = VolumeStatus.CREATING, worker: str = WORKER
) -> Volume:
    """Claims the volume for ``worker`` as the manager does before it works on it."""
    claimed = await store.claim(db, volume_id, status, BACKEND_HOST, worker, LEASE)
    assert claimed is not None, f"{volume_id} is held by another worker"
    return claimed


async def add_held_volume(
    db: Database,
    size: int = 2,
    status: str = VolumeStatus.CREATING,
    schedule_attempts: int = 0,
    tried_hosts: tuple[str, ...] = (),
) -> Volume:
    """``add_volume`` placed here and claimed by ``WORKER``: what the manager works on."""
    volume = await add_volume(
        db, size=size, status=status, schedule_attempts=schedule_attempts, tried_hosts=tried_hosts
    )
    await claim(db, volume.id, status)
    return volume


async def mark_deleting(db: Database, volume_id: str) -> None:
    """What the api's delete writes: ``deleting``, and whoever held the volume lets go."""
    async with db.session() as session:
        volume = await session.get(Volume, volume_id, with_for_update=True)
        assert volume is not None
        volume.status = VolumeStatus.DELETING
        volume.worker = None
        volume.lease_expires_at = None
        volume.updated_at = utcnow()


async def usage(db: Database, resource: str = "gigabytes") -> int:
    async with db.session() as session:
        row = await session.get(QuotaUsage, (PROJECT, resource))
        return 0 if row is None else row.in_use


async def reload(db: Database, volume_id: str) -> Volume | None:
    async with db.session() as session:
        return await session.get(Volume, volume_id, populate_existing=True)


def create_request(
    volume: Volume, retry: RetryState | None = None, host: str = POOL
) -> CreateRequest:
    return CreateRequest(
        volume_id=volume.id,
        project_id=volume.project_id,
        size_gb=volume.size,
        availability_zone=volume.availability_zone,
        volume_type=VolumeTypeRef(id=volume.volume_type_id, name=DEFAULT_VOLUME_TYPE),
        host=host,
        retry=retry or RetryState(),
    )
