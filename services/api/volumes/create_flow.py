"""The api's create-volume flow, as the seed walks through it (Cinder's api create flow).

    ExtractVolumeRequest -> QuotaReserve -> EntryCreate -> QuotaCommit -> VolumeCast

A volume made from a snapshot or from another volume goes through the same steps
(``services.api.volumes.sources`` checks the source): its size defaults to the source's, its
type and zone to the source's volume's; EntryCreate checks the source again with its row locked
and records it (``snapshot_id`` / ``source_volid``, ``bootable`` as the source's volume);
VolumeCast pins it to the backend that holds the source (``source_backend``, the seed's
``snapshot_same_host``).

Each step's docstring says what it does and how it is undone. QuotaReserve, EntryCreate and
QuotaCommit run in one database transaction: the volume is accepted when it commits (the row,
status ``creating``, is then the durable record of the work, ``cindermesh.db.work``), and a
failure or a crash before that leaves nothing, not even a reservation. VolumeCast only offers
the volume to a scheduler, in the background: the flow answers as soon as the row is
committed, and a scheduler that is down or slow delays the volume, never the answer; the
schedulers' sweep places what no scheduler was offered.

A create retried with the same request id (``X-OpenStack-Request-ID``) and project within
``idempotency_window`` seconds answers the volume the first one made, even when the two run
at once (a cindermesh guarantee; Cinder makes a second volume).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from dataclasses import dataclass, field

from sqlalchemy.exc import IntegrityError
from sqlmodel import col, delete, select
from sqlmodel.ext.asyncio.session import AsyncSession

from cindermesh.db import quota
from cindermesh.db.engine import Database
from cindermesh.db.models import (
    Group,
    Volume,
    VolumeCreateRequest,
    VolumeMetadata,
    VolumeType,
    utcnow,
)
from cindermesh.db.volume_types import encryption_of, type_extra_specs
from cindermesh.errors import BackendUnavailable, InvalidInput, InvalidVolume, QuotaExceeded
from cindermesh.flow import Step, run_flow
from cindermesh.scheduler_hints import SchedulerHints
from cindermesh.settings import Settings
from cindermesh.telemetry.request_id import current_request_id
from cindermesh_pb.api.v1 import volume_service_pb2 as api_pb2
from cindermesh_pb.scheduler.v1 import scheduler_pb2
from services.api.clients import SchedulerClient
from services.api.edge.request_context import RequestContext
from services.api.groups.membership import check_group_accepts, find_group
from services.api.policy import authorize
from services.api.volumes.body import VolumeCreateInput, validate_create
from services.api.volumes.lookups import (
    find_volume_type,
    known_availability_zones,
    records_for,
)
from services.api.volumes.sources import (
    CreateSource,
    check_same_zone,
    check_source_type,
    created_from,
    extract_size,
    extract_source,
    find_source,
    hold_source,
    source_zone,
)
from services.api.volumes.views import VolumeRecord

#: Cinder's rule for creating a volume of a multiattach type.
MULTIATTACH_POLICY = "volume:multiattach"

__all__ = ["FLOW", "MULTIATTACH_POLICY", "CreateVolumeFlow", "CreateVolumeState"]

FLOW = "api.create_volume"

log = logging.getLogger(__name__)

#: webob's text of a bare 400: Cinder's answer to a create without a size (and no source).
DEFAULT_400_MESSAGE = (
    "The server could not comply with the request since it is either malformed or otherwise "
    "incorrect."
)
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
    #: ``OS-SCH-HNT:scheduler_hints``, kept on the row (the scheduler reads them there).
    hints: SchedulerHints = field(default_factory=SchedulerHints)
    #: The transaction QuotaReserve, EntryCreate and QuotaCommit write in.
    session: AsyncSession | None = None
    # ExtractVolumeRequest
    request: VolumeCreateInput | None = None
    size: int = 0
    volume_type: VolumeType | None = None
    extra_specs: dict[str, str] = field(default_factory=dict)
    #: Whether the volume may have several attachments (its type's ``multiattach``).
    multiattach: bool = False
    availability_zone: str = ""
    #: The snapshot or volume it is made from, if any.
    source: CreateSource = field(default_factory=CreateSource)
    #: The generic group it is created in (``group_id``), if any.
    group: Group | None = None
    # QuotaReserve
    deltas: dict[str, int] = field(default_factory=dict)
    # EntryCreate
    volume: Volume | None = None

    def record(self) -> VolumeRecord:
        assert self.volume is not None and self.volume_type is not None and self.request
        return VolumeRecord(self.volume, dict(self.request.metadata), self.volume_type.name)


class CreateVolumeFlow:
    def __init__(self, db: Database, settings: Settings, scheduler: SchedulerClient) -> None:
        self._db = db
        self._settings = settings
        self._scheduler = scheduler
        self._validate: list[Step[CreateVolumeState]] = [
            Step("ExtractVolumeRequest", self.extract_volume_request),
        ]
        #: In one transaction: the undo of each is its rollback.
        self._record: list[Step[CreateVolumeState]] = [
            Step("QuotaReserve", self.quota_reserve),
            Step("EntryCreate", self.entry_create),
            Step("QuotaCommit", self.quota_commit),
        ]
        self._cast: list[Step[CreateVolumeState]] = [Step("VolumeCast", self.volume_cast)]
        self._offers: set[asyncio.Task[None]] = set()

    async def run(
        self,
        ctx: RequestContext,
        body: api_pb2.VolumeCreate,
        hints: SchedulerHints | None = None,
    ) -> VolumeRecord:
        state = CreateVolumeState(ctx=ctx, body=body, hints=hints or SchedulerHints())
        await run_flow(FLOW, self._validate, state)
        try:
            async with self._db.session() as session:
                if (earlier := await self._earlier(session, ctx)) is not None:
                    return earlier
                state.session = session
                await run_flow(FLOW, self._record, state)
        except IntegrityError:
            # The same request, retried at the same time, committed its volume first.
            async with self._db.read() as session:
                if (earlier := await self._earlier(session, ctx)) is not None:
                    return earlier
            raise
        finally:
            state.session = None
        await run_flow(FLOW, self._cast, state)
        return state.record()

    def _idempotency_cutoff(self) -> dt.datetime:
        return utcnow() - dt.timedelta(seconds=self._settings.work.idempotency_window)

    async def _earlier(self, session: AsyncSession, ctx: RequestContext) -> VolumeRecord | None:
        """The volume an earlier create with this request id made, if it is still there."""
        query = (
            select(Volume)
            .join(VolumeCreateRequest, col(VolumeCreateRequest.volume_id) == col(Volume.id))
            .where(
                col(VolumeCreateRequest.project_id) == ctx.project_id,
                col(VolumeCreateRequest.request_id) == current_request_id(),
                col(VolumeCreateRequest.created_at) >= self._idempotency_cutoff(),
            )
        )
        volume = (await session.exec(query)).first()
        if volume is None:
            return None
        log.info("Volume %s: a retried create answers the volume it made", volume.id)
        return (await records_for(session, [volume]))[0]

    async def extract_volume_request(self, state: CreateVolumeState) -> None:
        """Validates the body as Cinder does; resolves the source (``_extract_snapshot``,
        ``_extract_source_volume``), the size, the volume type and the zone.

        Undo: nothing (no side effect).
        """
        request = validate_create(state.body, state.ctx.version)
        async with self._db.read() as session:
            requested_type = (
                await find_volume_type(session, state.ctx, request.volume_type)
                if request.volume_type
                else None
            )
            source = await find_source(session, state.ctx, request)
            volume_type = await check_source_type(session, state.ctx, source, requested_type)
            if request.group_id is not None:
                state.group = await find_group(session, state.ctx, request.group_id)
                await check_group_accepts(session, state.group, volume_type)
            state.extra_specs = await type_extra_specs(session, volume_type.id)
            zones = await known_availability_zones(session, self._settings)
            encrypted = volume_type.id in await encryption_of(session, (volume_type.id,))
        # Cinder's multiattach volumes: those of a type whose extra spec says so.
        state.multiattach = state.extra_specs.get("multiattach") == "<is> True"
        if state.multiattach and encrypted:
            raise InvalidVolume("Multiattach cannot be used with encrypted volumes.")
        if state.multiattach:
            authorize(state.ctx, MULTIATTACH_POLICY, {"project_id": state.ctx.project_id})
        extract_source(source)
        size = extract_size(request.size, source)
        if size is None:
            raise InvalidInput(DEFAULT_400_MESSAGE)
        if request.multiattach:
            raise InvalidInput(MULTIATTACH_REMOVED)
        # A volume of a group is in the group's zone unless told otherwise.
        requested_zone = request.availability_zone or (
            state.group.availability_zone if state.group is not None else None
        )
        zone = source_zone(requested_zone, source) or self._settings.api.default_availability_zone
        if zone not in zones:
            raise InvalidInput(f"Availability zone '{zone}' is invalid.")
        check_same_zone(zone, source)
        log.info("Create volume of %s GB from %s", size, created_from(source))
        state.request = request
        state.size = size
        state.volume_type = volume_type
        state.availability_zone = zone
        state.source = source

    async def quota_reserve(self, state: CreateVolumeState) -> None:
        """Reserves volumes and gigabytes (and their per-type keys) for the project.

        Undo: the transaction's rollback.
        """
        assert state.volume_type is not None and state.session is not None
        session = state.session
        limits = await quota.limits_for(session, state.ctx.project_id, self._settings.quotas)
        per_volume = limits.get("per_volume_gigabytes", -1)
        if per_volume != -1 and state.size > per_volume:
            raise QuotaExceeded(
                f"VolumeSizeExceedsLimit: Requested volume size {state.size}G is larger "
                f"than maximum allowed limit {per_volume}G."
            )
        state.deltas = quota.volume_deltas(state.size, state.volume_type.name)
        await quota.reserve(
            session,
            state.ctx.project_id,
            state.deltas,
            self._settings.quotas,
            durable=False,
            limits=limits,
        )

    async def entry_create(self, state: CreateVolumeState) -> None:
        """Writes the volume row (status ``creating``), its metadata, and the request id that
        made it.

        Undo: the transaction's rollback.
        """
        assert state.request is not None and state.volume_type is not None
        assert state.session is not None
        session = state.session
        await hold_source(session, state.source)
        volume = Volume(
            project_id=state.ctx.project_id,
            user_id=state.ctx.caller.user_id,
            name=state.request.name,
            description=state.request.description,
            size=state.size,
            availability_zone=state.availability_zone,
            volume_type_id=state.volume_type.id,
            snapshot_id=state.source.snapshot_id,
            source_volid=state.source.source_volid,
            bootable=state.source.bootable,
            multiattach=state.multiattach,
            group_id=state.group.id if state.group is not None else None,
            scheduler_hints=state.hints.to_text(),
        )
        session.add(volume)
        session.add_all(
            VolumeMetadata(volume_id=volume.id, key=k, value=v)
            for k, v in state.request.metadata.items()
        )
        request_id = current_request_id()
        # A record of this request id that no longer counts (expired, or its volume is gone).
        stale = col(VolumeCreateRequest.created_at) < self._idempotency_cutoff()
        gone = col(VolumeCreateRequest.volume_id).not_in(select(Volume.id))
        await session.exec(
            delete(VolumeCreateRequest).where(
                col(VolumeCreateRequest.project_id) == state.ctx.project_id,
                col(VolumeCreateRequest.request_id) == request_id,
                stale | gone,
            )
        )
        session.add(
            VolumeCreateRequest(
                project_id=state.ctx.project_id, request_id=request_id, volume_id=volume.id
            )
        )
        state.volume = volume

    async def quota_commit(self, state: CreateVolumeState) -> None:
        """Moves the reservations to in-use; the transaction commits after this step.

        Undo: the transaction's rollback.
        """
        assert state.session is not None
        await quota.commit_deltas(state.session, state.ctx.project_id, state.deltas)

    async def volume_cast(self, state: CreateVolumeState) -> None:
        """Offers the volume to the scheduler in the background (the fast path of the
        hand-off; the row is the record).

        Undo: nothing: once committed, the volume is accepted.
        """
        assert state.volume is not None and state.volume_type is not None
        spec = scheduler_pb2.VolumeSpec(
            volume_id=state.volume.id,
            project_id=state.ctx.project_id,
            size_gb=state.size,
            availability_zone=state.availability_zone,
            volume_type=scheduler_pb2.VolumeTypeSpec(
                id=state.volume_type.id,
                name=state.volume_type.name,
                extra_specs=state.extra_specs,
            ),
            snapshot_id=state.source.snapshot_id or "",
            source_volid=state.source.source_volid or "",
            source_backend=state.source.backend,
        )
        offer = asyncio.get_running_loop().create_task(self._offer(spec))
        self._offers.add(offer)
        offer.add_done_callback(self._offers.discard)

    async def _offer(self, spec: scheduler_pb2.VolumeSpec) -> None:
        try:
            await self._scheduler.create_volume(spec)
        except BackendUnavailable as error:
            log.warning(
                "Volume %s: no scheduler took it now (%s); a scheduler's sweep will",
                spec.volume_id,
                error.__cause__ or error,
            )
