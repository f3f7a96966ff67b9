"""What a manager finds to do when it starts, and on each sweep (``cindermesh.db.work``).

* At start it takes over every volume of its backend being created or deleted (a previous
  run of this manager held them, or nobody did yet) and runs their work again: the driver's
  create and delete are idempotent. The attempts and tried pools are on the row, so a create
  that fails again is handed back to the schedulers as any other.
* Also at start it removes the images a previous run left for volumes that are no longer
  placed here: placed elsewhere since its lease lapsed, ended in error, or gone.
* On each sweep it takes the volumes of its backend nobody holds: hand-offs whose RPC never
  arrived and deletes marked while it was down; likewise extends and reverts (``extending``
  with a target size, ``reverting``), at start and on each sweep, run again from their rows.

Rows in ``creating`` without a host belong to the schedulers, not to us.
"""

from __future__ import annotations

from dataclasses import dataclass

from cindermesh.db.engine import Database
from cindermesh.db.models import Volume, VolumeStatus, VolumeType
from cindermesh.db.volume_types import type_extra_specs
from cindermesh.db.work import split_hosts
from services.volume import store
from services.volume.domain import CreateRequest, RetryState, VolumeTypeRef, backend_of

__all__ = ["Unfinished", "create_request", "orphans", "take_over"]

#: The statuses of an action a manager runs (an extend, a revert).
_ACTION_STATUSES = (VolumeStatus.EXTENDING, VolumeStatus.REVERTING)


@dataclass(frozen=True)
class Unfinished:
    creates: tuple[CreateRequest, ...]
    deletes: tuple[str, ...]
    #: Volumes being extended or reverted (their rows say what to do).
    actions: tuple[Volume, ...] = ()


async def _volume_type(db: Database, type_id: str) -> VolumeTypeRef:
    async with db.read() as session:
        volume_type = await session.get(VolumeType, type_id)
        pairs = tuple(sorted((await type_extra_specs(session, type_id)).items()))
    name = volume_type.name if volume_type is not None else ""
    return VolumeTypeRef(id=type_id, name=name, extra_specs=pairs)


async def create_request(db: Database, row: Volume) -> CreateRequest:
    """The create of a placed volume, as its row says."""
    assert row.host is not None
    return CreateRequest(
        volume_id=row.id,
        project_id=row.project_id,
        size_gb=row.size,
        availability_zone=row.availability_zone,
        volume_type=await _volume_type(db, row.volume_type_id),
        host=row.host,
        retry=RetryState(
            num_attempts=row.schedule_attempts,
            hosts=split_hosts(row.tried_hosts),
            last_error=row.last_error or "",
        ),
        snapshot_id=row.snapshot_id or "",
        source_volid=row.source_volid or "",
    )


async def take_over(db: Database, backend_host: str, worker: str, lease: float) -> Unfinished:
    """Work a previous run of ``backend_host`` (host@backend) accepted and did not finish, or
    that was placed here while it was down; it is ``worker``'s now."""
    rows = await store.take_over(db, backend_host, worker, lease)
    creates = [
        await create_request(db, row)
        for row in rows
        if row.status == VolumeStatus.CREATING and row.host is not None
    ]
    deletes = tuple(row.id for row in rows if row.status == VolumeStatus.DELETING)
    actions = tuple(row for row in rows if row.status in _ACTION_STATUSES)
    return Unfinished(creates=tuple(creates), deletes=deletes, actions=actions)


async def orphans(db: Database, backend_host: str, images: list[str]) -> list[str]:
    """The volumes among ``images`` (ids of images on the backend) that are not placed here."""
    if not images:
        return []
    hosts = await store.volume_hosts(db, images)
    return [
        volume_id
        for volume_id in images
        if (host := hosts.get(volume_id)) is None or backend_of(host) != backend_host
    ]
