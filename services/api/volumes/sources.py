"""A create's source, as the api checks it (the seed's ``_extract_snapshot``,
``_extract_source_volume`` and ``_extract_size``, and Cinder's ``volume.api.create`` rules on
the volume type of a volume made from a source).

    find_source        the snapshot / source volume the caller may see, else Cinder's 404
    check_source_type  a type other than the source's must be one the volume could retype to
    extract_source     status rules (snapshot ``available``; volume ``available``/``in-use``)
    extract_size       the source's size when none is given; never smaller than it
    source_zone        the source's zone when none is given; never another one
    hold_source        in the transaction that writes the volume: the source, locked, is still
                       in a status a create may start from

Sources cindermesh does not hold (consistency groups, images, backups) are answered as Cinder
answers a missing one; a ``group_id`` is the group the volume joins (the create flow checks
it, ``services.api.groups.membership``).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from cindermesh.db import sources
from cindermesh.db.models import Service, Snapshot, SnapshotStatus, Volume, VolumeStatus, VolumeType
from cindermesh.db.volume_types import type_extra_specs
from cindermesh.errors import InvalidSnapshot, InvalidVolume, NotFound
from services.api.edge.request_context import RequestContext
from services.api.schema import invalid_input
from services.api.volumes.body import VolumeCreateInput
from services.api.volumes.lookups import find_volume, find_volume_type

__all__ = [
    "CreateSource",
    "check_same_zone",
    "check_source_type",
    "created_from",
    "extract_size",
    "extract_source",
    "find_source",
    "hold_source",
    "source_zone",
]

#: Cinder's SNAPSHOT_PROCEED_STATUS and SRC_VOL_PROCEED_STATUS.
SNAPSHOT_PROCEED_STATUS = (SnapshotStatus.AVAILABLE,)
SRC_VOL_PROCEED_STATUS = (VolumeStatus.AVAILABLE, VolumeStatus.IN_USE)

#: Sources cindermesh does not hold yet, in the order Cinder looks them up.
_UNHELD_SOURCES = (
    ("consistencygroup_id", "ConsistencyGroup"),
    ("image_ref", "Image"),
    ("backup_id", "Backup"),
)


@dataclass(frozen=True)
class CreateSource:
    """What a create is made from: nothing, a snapshot (and its volume), or a volume."""

    snapshot: Snapshot | None = None
    source_volume: Volume | None = None
    #: The volume that holds the source: the snapshot's volume, or the source volume.
    origin: Volume | None = None

    @property
    def snapshot_id(self) -> str | None:
        return self.snapshot.id if self.snapshot else None

    @property
    def source_volid(self) -> str | None:
        return self.source_volume.id if self.source_volume else None

    @property
    def volume_type_id(self) -> str | None:
        """The type a volume made from it gets when the create names none."""
        if self.source_volume is not None:
            return self.source_volume.volume_type_id
        if self.snapshot is not None:
            origin_type = self.origin.volume_type_id if self.origin else None
            return self.snapshot.volume_type_id or origin_type
        return None

    @property
    def bootable(self) -> bool:
        """Cinder's EntryCreate: a volume made from a source is bootable as its origin."""
        return bool(self.origin and self.origin.bootable)

    @property
    def backend(self) -> str:
        """``host@backend`` holding the source (empty without one)."""
        host = self.origin.host if self.origin else None
        return host.partition("#")[0] if host else ""


async def find_source(
    session: AsyncSession, ctx: RequestContext, request: VolumeCreateInput
) -> CreateSource:
    """The source the body names, as the caller may see it (its project's, or any for an
    admin); Cinder's 404 for a missing one."""
    snapshot = origin = source_volume = None
    if request.snapshot_id:
        query = select(Snapshot).where(Snapshot.id == request.snapshot_id)
        if not ctx.caller.is_admin:
            query = query.where(Snapshot.project_id == ctx.project_id)
        snapshot = (await session.exec(query)).first()
        if snapshot is None:
            raise NotFound(f"Snapshot {request.snapshot_id} could not be found.")
        origin = await session.get(Volume, snapshot.volume_id)
    if request.source_volid:
        source_volume = await find_volume(session, ctx, request.source_volid)
        origin = source_volume
    for field_name, kind in _UNHELD_SOURCES:
        if unheld := getattr(request, field_name):
            raise NotFound(f"{kind} {unheld} could not be found.")
    return CreateSource(snapshot=snapshot, source_volume=source_volume, origin=origin)


async def _single_volume_service(session: AsyncSession) -> bool:
    count = (await session.exec(select(func.count()).select_from(Service))).one()
    return int(count) == 1


async def _retype_is_possible(
    session: AsyncSession, source_type_id: str | None, target: VolumeType
) -> bool:
    """Cinder's ``_retype_is_possible`` (no encrypted types here): one volume service, or
    both types name the same ``volume_backend_name``."""
    if await _single_volume_service(session):
        return True
    source_specs = await type_extra_specs(session, source_type_id) if source_type_id else {}
    target_specs = await type_extra_specs(session, target.id)
    source_name = source_specs.get("volume_backend_name")
    return bool(source_name) and source_name == target_specs.get("volume_backend_name")


async def check_source_type(
    session: AsyncSession, ctx: RequestContext, source: CreateSource, requested: VolumeType | None
) -> VolumeType:
    """The new volume's type: the requested one (compatible with the source's), else the
    source's, else the default type."""
    if requested is None:
        return await find_volume_type(session, ctx, source.volume_type_id)
    volume_type = requested
    if source.source_volume is not None:
        source_type_id = source.source_volume.volume_type_id
        if volume_type.id != source_type_id and not await _retype_is_possible(
            session, source_type_id, volume_type
        ):
            raise invalid_input(
                f"Invalid volume_type provided: {volume_type.id} (requested type is not "
                "compatible; either match source volume, or omit type argument)."
            )
    snapshot = source.snapshot
    if snapshot is not None and volume_type.id != snapshot.volume_type_id:
        origin_type_id = source.origin.volume_type_id if source.origin else None
        if not await _retype_is_possible(session, origin_type_id, volume_type):
            raise invalid_input(
                f"Invalid volume_type provided: {volume_type.id} (requested type is not "
                "compatible; recommend omitting the type argument)."
            )
    return volume_type


def _check_status(status: str, allowed: tuple[str, ...], name: str) -> str | None:
    if status in allowed:
        return None
    return f"Originating {name} status must be one of '{', '.join(allowed)}' values"


def extract_source(source: CreateSource) -> None:
    """Cinder's check_exclusive_options, ``_extract_snapshot`` and ``_extract_source_volume``."""
    if source.snapshot is not None and source.source_volume is not None:
        raise invalid_input("May specify only one of backup, imageRef, snapshot, source volume")
    if source.snapshot is not None:
        reason = _check_status(source.snapshot.status, SNAPSHOT_PROCEED_STATUS, "snapshot")
        if reason:
            raise InvalidSnapshot(reason)
    if source.source_volume is not None:
        reason = _check_status(source.source_volume.status, SRC_VOL_PROCEED_STATUS, "source volume")
        if reason:
            raise InvalidVolume(reason)


def extract_size(size: int | None, source: CreateSource) -> int | None:
    """Cinder's ``_extract_size``: the source's size when none is given, never less."""
    if source.source_volume is not None:
        source_size = source.source_volume.size
        size = size or source_size
        if size < source_size:
            raise invalid_input(
                f"Volume size '{size}'GB cannot be smaller than original volume size  "
                f"{source_size}GB. They must be >= original volume size."
            )
    elif source.snapshot is not None:
        snapshot_size = source.snapshot.volume_size
        size = size or snapshot_size
        if size < snapshot_size:
            raise invalid_input(
                f"Volume size '{size}'GB cannot be smaller than the snapshot size "
                f"{snapshot_size}GB. They must be >= original snapshot size."
            )
    return size


def source_zone(requested: str | None, source: CreateSource) -> str | None:
    """The source's zone when none is requested (Cinder's ``_extract_availability_zones``)."""
    if requested is None and source.origin is not None:
        return source.origin.availability_zone
    return requested


def check_same_zone(zone: str, source: CreateSource) -> None:
    """Cinder's ``cloned_volume_same_az`` (true by default): a volume made from a source is in
    its zone."""
    if source.origin is None or source.origin.availability_zone == zone:
        return
    what = "snapshot" if source.snapshot is not None else "source volume"
    raise invalid_input(f"Volume must be in the same availability zone as the {what}")


async def hold_source(session: AsyncSession, source: CreateSource) -> None:
    """In the transaction that writes the new volume: the source, read again with its row
    locked, is still one a create may start from (a snapshot delete locks the same row and
    refuses while a volume is being created from it: ``sources.creating_from_snapshot``)."""
    if source.snapshot is not None:
        snapshot = await sources.locked_snapshot(session, source.snapshot.id)
        if snapshot is None:
            raise NotFound(f"Snapshot {source.snapshot.id} could not be found.")
        if reason := _check_status(snapshot.status, SNAPSHOT_PROCEED_STATUS, "snapshot"):
            raise InvalidSnapshot(reason)
    if source.source_volume is not None:
        volume = await session.get(
            Volume, source.source_volume.id, with_for_update=True, populate_existing=True
        )
        if volume is None:
            raise NotFound(f"Volume {source.source_volume.id} could not be found.")
        if reason := _check_status(volume.status, SRC_VOL_PROCEED_STATUS, "source volume"):
            raise InvalidVolume(reason)


def created_from(source: CreateSource) -> str:
    """For the log line: what the volume is made from."""
    if source.snapshot is not None:
        return f"snapshot {source.snapshot.id}"
    if source.source_volume is not None:
        return f"volume {source.source_volume.id}"
    return "nothing (raw)"
