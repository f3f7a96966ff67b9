"""The api's create-volume flow, as the seed walks through it (Cinder's api create flow).

    ExtractVolumeRequest -> QuotaReserve -> EntryCreate -> QuotaCommit -> VolumeCast

Each step's docstring says what it does and how it is undone. The flow answers once the
scheduler has accepted the volume; the row (status ``creating``) is the durable record of the
work from then on.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlmodel import delete

from cindermesh.db import quota
from cindermesh.db.engine import Database
from cindermesh.db.models import Volume, VolumeMetadata, VolumeType
from cindermesh.errors import InvalidInput, NotFound, QuotaExceeded
from cindermesh.flow import Step, run_flow
from cindermesh.settings import Settings
from cindermesh_pb.api.v1 import volume_service_pb2 as api_pb2
from cindermesh_pb.scheduler.v1 import scheduler_pb2
from services.api.clients import SchedulerClient
from services.api.lookups import find_volume_type, known_availability_zones, type_extra_specs
from services.api.request_context import RequestContext
from services.api.validation import DEFAULT_400_MESSAGE, VolumeCreateInput, validate_create
from services.api.views import VolumeRecord

__all__ = ["CreateVolumeFlow", "CreateVolumeState"]

MULTIATTACH_REMOVED = (
    "multiattach parameter has been removed. The default behavior is to use multiattach "
    "enabled volume types. Contact your administrator to create a multiattach enabled volume "
    "type and use it to create multiattach volumes."
)


@dataclass
class CreateVolumeState:
    """What the steps produce, field by field, in step order."""

    ctx: RequestContext
    body: api_pb2.VolumeCreate
    # ExtractVolumeRequest
    request: VolumeCreateInput | None = None
    size: int = 0
    volume_type: VolumeType | None = None
    extra_specs: dict[str, str] = field(default_factory=dict)
    availability_zone: str = ""
    # QuotaReserve
    reservations: list[str] = field(default_factory=list)
    # EntryCreate
    volume: Volume | None = None
    # QuotaCommit
    committed: bool = False

    def record(self) -> VolumeRecord:
        assert self.volume is not None and self.volume_type is not None and self.request
        return VolumeRecord(self.volume, dict(self.request.metadata), self.volume_type.name)


class CreateVolumeFlow:
    def __init__(self, db: Database, settings: Settings, scheduler: SchedulerClient) -> None:
        self._db = db
        self._settings = settings
        self._scheduler = scheduler
        self._steps: list[Step[CreateVolumeState]] = [
            Step("ExtractVolumeRequest", self.extract_volume_request),
            Step("QuotaReserve", self.quota_reserve, self.quota_reserve_revert),
            Step("EntryCreate", self.entry_create, self.entry_create_revert),
            Step("QuotaCommit", self.quota_commit, self.quota_commit_revert),
            Step("VolumeCast", self.volume_cast),
        ]

    async def run(self, ctx: RequestContext, body: api_pb2.VolumeCreate) -> VolumeRecord:
        state = CreateVolumeState(ctx=ctx, body=body)
        await run_flow("api.create_volume", self._steps, state)
        return state.record()

    async def extract_volume_request(self, state: CreateVolumeState) -> None:
        """Validates the body as Cinder does; resolves the volume type and the zone.

        Undo: nothing (no side effect).
        """
        request = validate_create(state.body, state.ctx.version)
        async with self._db.session() as session:
            volume_type = await find_volume_type(
                session, request.volume_type, state.ctx.caller.is_admin
            )
            state.extra_specs = await type_extra_specs(session, volume_type.id)
            zones = await known_availability_zones(session, self._settings)
        _check_sources(request)
        if request.size is None:
            raise InvalidInput(DEFAULT_400_MESSAGE)
        if request.multiattach:
            raise InvalidInput(MULTIATTACH_REMOVED)
        zone = request.availability_zone or self._settings.api.default_availability_zone
        if zone not in zones:
            raise InvalidInput(f"Availability zone '{zone}' is invalid.")
        state.request = request
        state.size = request.size
        state.volume_type = volume_type
        state.availability_zone = zone

    async def quota_reserve(self, state: CreateVolumeState) -> None:
        """Reserves volumes and gigabytes (and their per-type keys) for the project.

        Undo: the reservations are rolled back (unless already committed).
        """
        assert state.volume_type is not None
        async with self._db.session() as session:
            limits = await quota.limits_for(session, state.ctx.project_id, self._settings.quotas)
            per_volume = limits.get("per_volume_gigabytes", -1)
            if per_volume != -1 and state.size > per_volume:
                raise QuotaExceeded(
                    f"VolumeSizeExceedsLimit: Requested volume size {state.size}G is larger "
                    f"than maximum allowed limit {per_volume}G."
                )
            state.reservations = await quota.reserve(
                session,
                state.ctx.project_id,
                quota.volume_deltas(state.size, state.volume_type.name),
                self._settings.quotas,
            )

    async def quota_reserve_revert(self, state: CreateVolumeState) -> None:
        if state.reservations and not state.committed:
            async with self._db.session() as session:
                await quota.rollback(session, state.reservations)

    async def entry_create(self, state: CreateVolumeState) -> None:
        """Writes the volume row (status ``creating``) and its metadata.

        Undo: the row and its metadata are deleted.
        """
        assert state.request is not None and state.volume_type is not None
        volume = Volume(
            project_id=state.ctx.project_id,
            user_id=state.ctx.caller.user_id,
            name=state.request.name,
            description=state.request.description,
            size=state.size,
            availability_zone=state.availability_zone,
            volume_type_id=state.volume_type.id,
        )
        async with self._db.session() as session:
            session.add(volume)
            await session.flush()
            session.add_all(
                VolumeMetadata(volume_id=volume.id, key=k, value=v)
                for k, v in state.request.metadata.items()
            )
        state.volume = volume

    async def entry_create_revert(self, state: CreateVolumeState) -> None:
        if state.volume is None:
            return
        async with self._db.session() as session:
            await session.exec(
                delete(VolumeMetadata).where(VolumeMetadata.volume_id == state.volume.id)  # type: ignore[arg-type]
            )
            await session.exec(delete(Volume).where(Volume.id == state.volume.id))  # type: ignore[arg-type]

    async def quota_commit(self, state: CreateVolumeState) -> None:
        """Moves the reservations to in-use.

        Undo: the volume's usage is given back.
        """
        async with self._db.session() as session:
            await quota.commit(session, state.reservations)
        state.committed = True

    async def quota_commit_revert(self, state: CreateVolumeState) -> None:
        if not state.committed or state.volume_type is None:
            return
        async with self._db.session() as session:
            await quota.release(
                session,
                state.ctx.project_id,
                quota.volume_deltas(state.size, state.volume_type.name),
            )

    async def volume_cast(self, state: CreateVolumeState) -> None:
        """Hands the volume to the scheduler and waits until it has accepted it.

        Undo: nothing here; the earlier undos remove the row and give the quota back.
        """
        assert state.volume is not None and state.volume_type is not None
        await self._scheduler.create_volume(
            scheduler_pb2.VolumeSpec(
                volume_id=state.volume.id,
                project_id=state.ctx.project_id,
                size_gb=state.size,
                availability_zone=state.availability_zone,
                volume_type=scheduler_pb2.VolumeTypeSpec(
                    id=state.volume_type.id,
                    name=state.volume_type.name,
                    extra_specs=state.extra_specs,
                ),
            )
        )


def _check_sources(request: VolumeCreateInput) -> None:
    """Sources cindermesh does not hold yet: answered as Cinder answers a missing source."""
    if request.snapshot_id:
        raise NotFound(f"Snapshot {request.snapshot_id} could not be found.")
    if request.source_volid:
        raise NotFound(f"Volume {request.source_volid} could not be found.")
    if request.consistencygroup_id:
        raise NotFound(f"ConsistencyGroup {request.consistencygroup_id} could not be found.")
    if request.group_id:
        raise NotFound(f"Group {request.group_id} could not be found.")
    if request.image_ref:
        raise NotFound(f"Image {request.image_ref} could not be found.")
    if request.backup_id:
        raise NotFound(f"Backup {request.backup_id} could not be found.")
