"""The scheduler's reads and writes of volume rows, each write one transaction of the shared
repository's conditional updates (``cindermesh.db.volumes``; the protocol is in
``cindermesh.db.work``).

* :func:`record_host`: the chosen pool (and its service) on a volume still waiting to be
  placed, with the deadline by which its manager must accept it, as Cinder's scheduler writes
  ``host`` and ``availability_zone`` before casting to the backend.
* :func:`take_back`: a placed volume its manager did not accept (or stopped working on) is
  waiting to be placed again, one attempt more and its pool tried.
* :func:`mark_error`: a volume that cannot be placed goes to ``error`` with a reason, gives
  its quota back exactly once (``volumes.give_back_quota``, as the api and the managers) and
  gets Cinder's user message (``volumes.fail_unplaced``).
* :func:`unplaced` and :func:`abandoned`: what the sweep finds nobody working on.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from cindermesh.db import sources, volumes
from cindermesh.db.engine import Database
from cindermesh.db.messages import Detail, Field
from cindermesh.db.models import (
    Service,
    Volume,
    VolumeStatus,
    VolumeType,
    VolumeTypeExtraSpec,
    utcnow,
)
from cindermesh.db.work import split_hosts
from cindermesh.errors import CindermeshError
from services.scheduler.backend_state import PoolState
from services.scheduler.spec import RetryState, ScheduleRequest, VolumeSpec, VolumeTypeSpec

__all__ = [
    "VolumeGone",
    "abandoned",
    "mark_error",
    "record_host",
    "schedule_requests",
    "take_back",
    "unplaced",
    "waiting_since_before",
]

#: Rows one sweep looks at, at most.
_SWEEP_LIMIT = 200


class VolumeGone(CindermeshError):
    """The volume was deleted, placed by someone else, or left ``creating`` meanwhile."""

    def __init__(self, volume_id: str) -> None:
        super().__init__(f"Volume {volume_id} is no longer waiting to be placed")


async def record_host(
    db: Database, spec: VolumeSpec, pool: PoolState, attempts: int, handoff_timeout: float
) -> None:
    """Writes ``host@backend#pool``, the service uuid, the pool's zone and the hand-off
    deadline; raises VolumeGone unless the row still waits after ``attempts`` failures."""
    async with db.session() as session:
        service = await session.get(Service, pool.backend)
        uuid = service.uuid if service is not None else None
        zone = pool.availability_zone
        placed = await volumes.place(
            session, spec.volume_id, attempts, pool.pool_id, uuid, zone, handoff_timeout
        )
    if not placed:
        raise VolumeGone(spec.volume_id)


async def take_back(
    db: Database, volume_id: str, host: str, attempts: int, reason: str, lapsed_only: bool
) -> RetryState | None:
    """Unplaces a volume placed on ``host`` after ``attempts`` failures that no manager holds
    (``lapsed_only``: only once its hand-off deadline or its worker's lease has passed),
    counting the attempt; the new retry state, or None if the row is gone or someone else has
    it now (a manager, or another placement)."""
    now = utcnow()
    async with db.session() as session:
        row = await volumes.locked(session, volume_id)
        if row is None or row.status != VolumeStatus.CREATING or row.host != host:
            return None
        if row.schedule_attempts != attempts:
            return None
        lapsed = row.lease_expires_at is None or row.lease_expires_at < now
        if (row.worker is not None or lapsed_only) and not lapsed:
            return None
        unplaced = await volumes.unplace(session, row, reason)
    if unplaced is None:
        return None
    num_attempts, hosts = unplaced
    return RetryState(num_attempts=num_attempts, hosts=hosts, last_error=reason)


async def mark_error(
    db: Database, spec: VolumeSpec, reason: str, detail: Field = Detail.UNKNOWN_ERROR
) -> bool:
    """Puts a volume waiting to be placed in ``error``, its quota given back once and Cinder's
    message (schedule allocate volume: ``detail``) recorded, in one transaction; False if it
    is gone or no longer waiting (someone else has it)."""
    async with db.session() as session:
        return await volumes.fail_unplaced(session, spec.volume_id, reason, detail)


async def waiting_since_before(db: Database, volume_id: str, moment: dt.datetime) -> bool:
    """Whether the volume exists and has waited to be placed since before ``moment`` (since it
    was accepted, or last handed back)."""
    last_change = func.coalesce(col(Volume.updated_at), col(Volume.created_at))
    async with db.read() as session:
        since = (await session.exec(select(last_change).where(Volume.id == volume_id))).first()
    return since is not None and since < moment


async def _requests(session: AsyncSession, rows: list[Volume]) -> list[ScheduleRequest]:
    type_ids = {row.volume_type_id for row in rows}
    types = {
        t.id: t
        for t in await session.exec(select(VolumeType).where(col(VolumeType.id).in_(type_ids)))
    }
    specs: dict[str, dict[str, str]] = {type_id: {} for type_id in type_ids}
    extra = select(VolumeTypeExtraSpec).where(col(VolumeTypeExtraSpec.volume_type_id).in_(type_ids))
    for spec in await session.exec(extra):
        specs[spec.volume_type_id][spec.key] = spec.value
    requests = []
    for row in rows:
        volume_type = types.get(row.volume_type_id)
        attempts, hosts = row.schedule_attempts, split_hosts(row.tried_hosts)
        retry = RetryState(attempts, hosts, row.last_error or "") if attempts or hosts else None
        requests.append(
            ScheduleRequest(
                spec=VolumeSpec(
                    volume_id=row.id,
                    project_id=row.project_id,
                    size_gb=row.size,
                    availability_zone=row.availability_zone,
                    volume_type=VolumeTypeSpec(
                        id=row.volume_type_id,
                        name=volume_type.name if volume_type is not None else "",
                        extra_specs=specs[row.volume_type_id],
                    ),
                    snapshot_id=row.snapshot_id or "",
                    source_volid=row.source_volid or "",
                    source_backend=await sources.source_backend(
                        session, row.snapshot_id, row.source_volid
                    ),
                ),
                retry=retry,
            )
        )
    return requests


async def unplaced(db: Database, unchanged_since: dt.datetime) -> list[ScheduleRequest]:
    """Volumes waiting to be placed whose row has not changed since ``unchanged_since``
    (their scheduler died, was never reached, or deferred them), oldest first."""
    last_change = func.coalesce(col(Volume.updated_at), col(Volume.created_at))
    query = (
        select(Volume)
        .where(
            col(Volume.status) == VolumeStatus.CREATING,
            col(Volume.host).is_(None),
            col(Volume.worker).is_(None),
            last_change < unchanged_since,
        )
        .order_by(col(Volume.created_at))
        .limit(_SWEEP_LIMIT)
    )
    async with db.read() as session:
        rows = list(await session.exec(query))
        return await _requests(session, rows) if rows else []


async def abandoned(db: Database) -> list[tuple[str, str, int]]:
    """(volume id, host, attempts) of placed volumes whose hand-off deadline or worker's lease
    has passed: their manager never accepted them, or stopped renewing its claim."""
    now = utcnow()
    lapsed = col(Volume.lease_expires_at).is_(None) | (col(Volume.lease_expires_at) < now)
    query = (
        select(Volume.id, Volume.host, Volume.schedule_attempts)
        .where(
            col(Volume.status) == VolumeStatus.CREATING,
            col(Volume.host).is_not(None),
            lapsed,
        )
        .limit(_SWEEP_LIMIT)
    )
    async with db.read() as session:
        return [(i, host, attempts) for i, host, attempts in await session.exec(query) if host]


async def schedule_requests(db: Database, volume_ids: list[str]) -> list[ScheduleRequest]:
    """The requests that place these volumes, as their rows now say."""
    if not volume_ids:
        return []
    async with db.read() as session:
        rows = list(await session.exec(select(Volume).where(col(Volume.id).in_(volume_ids))))
        return await _requests(session, rows)
