"""Show, list and delete: the api's volume operations besides create."""

from __future__ import annotations

import logging

from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from cindermesh.db import groups, snapshots, volumes
from cindermesh.db.engine import Database
from cindermesh.db.models import AttachStatus, Service, Volume, VolumeMetadata, VolumeStatus
from cindermesh.errors import BackendUnavailable, InvalidVolume, NotFound
from cindermesh.telemetry.tracing import tracer
from services.api.clients import VolumeManagerClients
from services.api.edge.request_context import RequestContext
from services.api.policy import authorize
from services.api.schema import parse_bool_param
from services.api.volumes.listing import VOLUMES, ListPage, ListQuery, list_page
from services.api.volumes.lookups import find_volume, records_for
from services.api.volumes.views import VolumeRecord

__all__ = ["VolumeOperations"]

log = logging.getLogger(__name__)

#: Each metadata key with its distinct values.
DistinctMetadata = dict[str, list[str]]

_DELETABLE = ("available", "error", "error_restoring", "error_extending", "error_managing")
_NOT_DELETABLE = (
    "must not be migrating, attached, belong to a group, have snapshots, awaiting a "
    "transfer, or be disassociated from snapshots after volume transfer."
)


class VolumeOperations:
    def __init__(self, db: Database, managers: VolumeManagerClients) -> None:
        self._db = db
        self._managers = managers

    async def get(self, ctx: RequestContext, volume_id: str) -> VolumeRecord:
        async with self._db.read() as session:
            volume = await find_volume(session, ctx, volume_id)
            return (await records_for(session, [volume]))[0]

    async def list(
        self, ctx: RequestContext, query: ListQuery, with_records: bool
    ) -> tuple[ListPage[Volume], list[VolumeRecord]]:
        """A page of volumes (the caller's project's unless an admin asks for all)."""
        async with self._db.read() as session:
            page = await list_page(session, ctx, query, VOLUMES)
            records = await records_for(session, page.rows) if with_records else []
            return page, records

    async def summary(
        self, ctx: RequestContext, all_tenants: bool
    ) -> tuple[int, int, DistinctMetadata]:
        """Cinder's ``get_volume_summary``: count, total size and each metadata key's distinct
        values of the caller's project's volumes (every project's for an admin's
        ``all_tenants``)."""
        project_only = not (all_tenants and ctx.caller.is_admin)
        totals = select(func.count(col(Volume.id)), func.coalesce(func.sum(Volume.size), 0))
        pairs = select(VolumeMetadata.key, VolumeMetadata.value).distinct()
        if project_only:
            totals = totals.where(Volume.project_id == ctx.project_id)
            pairs = pairs.join(Volume, col(Volume.id) == col(VolumeMetadata.volume_id)).where(
                Volume.project_id == ctx.project_id
            )
        metadata: DistinctMetadata = {}
        async with self._db.read() as session:
            count, size = (await session.exec(totals)).one()
            for key, value in await session.exec(pairs.order_by(col(VolumeMetadata.key))):
                metadata.setdefault(key, []).append(value)
        return int(count), int(size), metadata

    async def delete(self, ctx: RequestContext, volume_id: str, cascade: str, force: str) -> None:
        """Marks the volume ``deleting`` and hands it to its volume manager.

        A volume never scheduled (no host) is removed here, quota and all, as Cinder does.
        """
        cascading = parse_bool_param("cascade", cascade)
        forced = parse_bool_param("force", force) if ctx.version.at_least(23) else False
        if forced:
            authorize(ctx, "volume:force_delete")
        await self.delete_marked(ctx, volume_id, forced, cascading)

    async def delete_marked(
        self, ctx: RequestContext, volume_id: str, forced: bool, cascade: bool = False
    ) -> None:
        """The delete once its parameters are parsed and authorized (``forced``: whatever the
        status, as ``os-force_delete`` too; ``cascade``: its snapshots go first, else a volume
        with snapshots stays)."""
        async with self._db.session() as session:
            found = await find_volume(session, ctx, volume_id)
            # Locked: a scheduler placing it meanwhile either wins first or finds it gone.
            volume = await session.get(
                Volume, found.id, with_for_update=True, populate_existing=True
            )
            if volume is None:
                # Deleted between the read and the lock (READ COMMITTED: another delete's
                # manager committed meanwhile); gone is gone, as for any other caller.
                raise NotFound(f"Volume {volume_id} could not be found.")
            if volume.attach_status == AttachStatus.ATTACHED:
                status = "" if forced else f"status must be {' or '.join(_DELETABLE)} and"
                raise InvalidVolume(f"Volume {status} {_NOT_DELETABLE}")
            if not forced and not await groups.lets_go(session, volume):
                raise InvalidVolume(
                    f"Volume status must be {' or '.join(_DELETABLE)} and {_NOT_DELETABLE}"
                )
            if volume.host is None:
                await _destroy_unscheduled(session, volume)
                return
            if not forced and volume.status not in _DELETABLE:
                raise InvalidVolume(
                    f"Volume status must be {' or '.join(_DELETABLE)} and {_NOT_DELETABLE}"
                )
            if forced and volume.status == VolumeStatus.DELETING:
                raise InvalidVolume(f"Volume  {_NOT_DELETABLE}")
            owner = None if ctx.caller.is_admin else ctx.project_id
            if not await snapshots.go_with_volume(session, volume.id, cascade, forced, owner):
                status = "" if forced else f"status must be {' or '.join(_DELETABLE)} and"
                raise InvalidVolume(f"Volume {status} {_NOT_DELETABLE}")
            if not await volumes.start_delete(session, volume):
                raise InvalidVolume(f"Volume  {_NOT_DELETABLE}")  # changed meanwhile
            backend = volume.host.partition("#")[0]
            service = (await session.exec(select(Service).where(Service.host == backend))).first()
        if service is None:
            log.warning(
                "volume %s: backend %s is not registered; left deleting", volume_id, backend
            )
            return
        try:
            await self._managers.delete_volume(service.address, volume_id)
        except BackendUnavailable:
            # The row stays `deleting`; the manager's sweep takes it when it is back.
            log.warning("volume %s: manager %s unreachable; left deleting", volume_id, backend)


async def _destroy_unscheduled(session: AsyncSession, volume: Volume) -> None:
    with tracer().start_as_current_span("api.delete_volume.destroy_unscheduled"):
        unscheduled = volumes.Expect(status=volume.status, host=None)
        if not await volumes.destroy(session, volume.id, unscheduled):
            raise InvalidVolume(f"Volume  {_NOT_DELETABLE}")  # placed meanwhile
