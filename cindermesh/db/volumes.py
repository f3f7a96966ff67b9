"""The volume repository: every write of a volume row's state, for the api, the schedulers
and the volume managers alike (the hand-off protocol they follow is in ``cindermesh.db.work``).

Two rules hold for every function here:

* **A status change is one conditional UPDATE** on the row's current state (an
  :class:`Expect`: its status and, where the protocol needs them, its host, worker, attempts
  and lease). A write whose expectation no longer holds changes nothing and says so (False or
  None), so two services racing for the same row cannot both win: the loser's UPDATE matches
  no row. Work that must read the row first (to count an attempt, or to report why it cannot
  take it) reads it locked and then writes conditionally on everything it read.
* **A volume's quota is given back by** :func:`give_back_quota` **only, at most once**: it
  clears ``quota_held`` with a conditional UPDATE and releases the quota only if that UPDATE
  changed the row. ``quota.release`` refuses to take usage below zero, so a double release
  that got past this would fail loudly instead of being hidden.

A create that ends in ``error`` (:func:`fail_unplaced`, :func:`fail_create`) records Cinder's
user message for it in the same transaction (``cindermesh.db.messages``).

Every function runs inside the caller's transaction (``Database.session()``).
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import ColumnElement, and_, delete, or_, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from cindermesh.db import placements, quota
from cindermesh.db.messages import Action, Detail, Field, Resource, record_message
from cindermesh.db.models import (
    Volume,
    VolumeAdminMetadata,
    VolumeAttachment,
    VolumeCreateRequest,
    VolumeMetadata,
    VolumeStatus,
    VolumeType,
    utcnow,
)
from cindermesh.db.work import join_hosts, lease_until, split_hosts
from cindermesh.telemetry.request_id import current_request_id

__all__ = [
    "ANY",
    "WORK_STATUSES",
    "Expect",
    "destroy",
    "expect_as_read",
    "fail_create",
    "fail_unplaced",
    "finish_create",
    "give_back_quota",
    "has_work",
    "hold",
    "locked",
    "on_backend",
    "place",
    "renew",
    "set_status",
    "start_delete",
    "take_over",
    "transition",
    "unplace",
]

_REASON_MAX = 1024
#: Statuses with work for a volume manager (see :func:`has_work` for the actions').
WORK_STATUSES = (VolumeStatus.CREATING, VolumeStatus.DELETING)


def has_work() -> ColumnElement[bool]:
    """Rows a volume manager has work on: being created or deleted, an extend accepted by the
    api (``extending`` with its target size), a revert (``reverting``)."""
    return or_(
        col(Volume.status).in_(WORK_STATUSES),
        and_(col(Volume.status) == VolumeStatus.EXTENDING, col(Volume.extend_to_gb).is_not(None)),
        col(Volume.status) == VolumeStatus.REVERTING,
    )


class _Unset(enum.Enum):
    ANY = "any"


#: In an :class:`Expect`: any value will do.
ANY: Final = _Unset.ANY


@dataclass(frozen=True)
class Expect:
    """The state a write expects a row in; ``None`` expects the column empty."""

    status: str
    host: str | _Unset | None = ANY
    worker: str | _Unset | None = ANY
    attempts: int | _Unset = ANY
    lease_expires_at: dt.datetime | _Unset | None = ANY

    def clauses(self) -> list[ColumnElement[bool]]:
        clauses = [col(Volume.status) == self.status]
        expected: list[tuple[Any, object]] = [
            (col(Volume.host), self.host),
            (col(Volume.worker), self.worker),
            (col(Volume.schedule_attempts), self.attempts),
            (col(Volume.lease_expires_at), self.lease_expires_at),
        ]
        for column, value in expected:
            if value is None:
                clauses.append(column.is_(None))
            elif value is not ANY:
                clauses.append(column == value)
        return clauses


def expect_as_read(volume: Volume) -> Expect:
    """Everything of ``volume``'s work state as it was read."""
    return Expect(
        status=volume.status,
        host=volume.host,
        worker=volume.worker,
        attempts=volume.schedule_attempts,
        lease_expires_at=volume.lease_expires_at,
    )


def on_backend(backend_host: str) -> ColumnElement[bool]:
    """Rows placed on ``backend_host`` (host@backend) or one of its pools."""
    return or_(col(Volume.host) == backend_host, col(Volume.host).startswith(f"{backend_host}#"))


async def locked(session: AsyncSession, volume_id: str) -> Volume | None:
    """The row as it is now, locked until the transaction ends (``SELECT ... FOR UPDATE``)."""
    return await session.get(Volume, volume_id, with_for_update=True, populate_existing=True)


async def transition(
    session: AsyncSession, volume_id: str, expect: Expect, **values: object
) -> bool:
    """Writes ``values`` to the row if it is as ``expect`` says; whether it was."""
    query = update(Volume).where(col(Volume.id) == volume_id, *expect.clauses()).values(**values)
    result = await session.exec(query)
    return int(result.rowcount) == 1


def _let_go() -> dict[str, object]:
    """Nobody holds the volume any more."""
    return {"worker": None, "lease_expires_at": None, "updated_at": utcnow()}


async def give_back_quota(session: AsyncSession, volume_id: str) -> bool:
    """Gives the volume's quota back if it still holds it; False if it did not (given back
    already, or no such row). The one place a volume's quota is released."""
    cleared = update(Volume).where(col(Volume.id) == volume_id, col(Volume.quota_held).is_(True))
    result = await session.exec(cleared.values(quota_held=False))
    if int(result.rowcount) != 1:
        return False
    query = (
        select(Volume.project_id, Volume.size, VolumeType.name)
        .join(VolumeType, col(VolumeType.id) == col(Volume.volume_type_id), isouter=True)
        .where(col(Volume.id) == volume_id)
    )
    project_id, size, type_name = (await session.exec(query)).one()
    await quota.release(session, project_id, quota.volume_deltas(size, type_name or ""))
    return True


async def _record_failure(
    session: AsyncSession,
    volume_id: str,
    action: Field,
    detail: Field,
    filter_name: str | None = None,
) -> None:
    """Cinder's user message for a create that just ended in ``error``: the project's, under
    the request id the create was accepted with (else the one being served, if any)."""
    accepted = and_(
        col(VolumeCreateRequest.project_id) == col(Volume.project_id),
        col(VolumeCreateRequest.volume_id) == col(Volume.id),
    )
    query = (
        select(Volume.project_id, VolumeCreateRequest.request_id)
        .outerjoin(VolumeCreateRequest, accepted)
        .where(col(Volume.id) == volume_id)
        .limit(1)
    )
    project_id, request_id = (await session.exec(query)).one()
    record_message(
        session,
        project_id=project_id,
        action=action,
        detail=detail,
        resource_uuid=volume_id,
        resource_type=Resource.VOLUME,
        request_id=request_id or current_request_id() or None,
        filter_name=filter_name,
    )


async def destroy(session: AsyncSession, volume_id: str, expect: Expect) -> bool:
    """Gives the quota back (and rolls back what an action in progress still held, e.g. an
    extend's increase) and deletes the metadata and the row, if the row is as ``expect``
    says; whether it was."""
    if not await transition(session, volume_id, expect, updated_at=utcnow()):
        return False
    await give_back_quota(session, volume_id)
    pending = select(Volume.pending_reservations).where(col(Volume.id) == volume_id)
    if held := split_hosts((await session.exec(pending)).one()):
        await quota.rollback(session, held)
    await session.exec(delete(VolumeMetadata).where(col(VolumeMetadata.volume_id) == volume_id))
    admin = delete(VolumeAdminMetadata).where(col(VolumeAdminMetadata.volume_id) == volume_id)
    await session.exec(admin)
    attachments = delete(VolumeAttachment).where(col(VolumeAttachment.volume_id) == volume_id)
    await session.exec(attachments)
    await placements.forget(session, volume_id)
    await session.exec(delete(Volume).where(col(Volume.id) == volume_id))
    return True


# The api


async def start_delete(session: AsyncSession, volume: Volume) -> bool:
    """``volume`` (placed, in the status it was read in) -> ``deleting``; whoever held it lets
    go, and its manager takes it again to delete it."""
    expect = Expect(status=volume.status, host=volume.host)
    return await transition(session, volume.id, expect, status=VolumeStatus.DELETING, **_let_go())


# The schedulers


async def place(
    session: AsyncSession,
    volume_id: str,
    attempts: int,
    host: str,
    service_uuid: str | None,
    availability_zone: str,
    handoff_timeout: float,
) -> bool:
    """Writes the chosen pool on a volume waiting to be placed after ``attempts`` failures,
    with the deadline by which its manager must accept it; False if it no longer waits."""
    waiting = Expect(status=VolumeStatus.CREATING, host=None, worker=None, attempts=attempts)
    values: dict[str, object] = {
        "host": host,
        "service_uuid": service_uuid,
        "lease_expires_at": lease_until(handoff_timeout),
        "updated_at": utcnow(),
    }
    if availability_zone:
        values["availability_zone"] = availability_zone
    return await transition(session, volume_id, waiting, **values)


async def unplace(
    session: AsyncSession, volume: Volume, reason: str
) -> tuple[int, tuple[str, ...]] | None:
    """Makes ``volume`` (placed, as read) wait to be placed again: no host, nobody holding
    it, one attempt more, its pool the last one tried. Returns the attempts and the tried
    pools (the next placement's retry info), or None if the row changed since it was read."""
    assert volume.host is not None
    hosts = (*(h for h in split_hosts(volume.tried_hosts) if h != volume.host), volume.host)
    attempts = volume.schedule_attempts + 1
    changed = await transition(
        session,
        volume.id,
        expect_as_read(volume),
        host=None,
        service_uuid=None,
        schedule_attempts=attempts,
        tried_hosts=join_hosts(hosts),
        last_error=reason[:_REASON_MAX],
        **_let_go(),
    )
    return (attempts, hosts) if changed else None


async def fail_unplaced(
    session: AsyncSession,
    volume_id: str,
    reason: str,
    detail: Field = Detail.UNKNOWN_ERROR,
    *,
    filter_name: str | None = None,
) -> bool:
    """A volume waiting to be placed -> ``error``, its quota given back and Cinder's message
    recorded (schedule allocate volume: ``detail``, e.g. ``Detail.NO_BACKEND_AVAILABLE``,
    naming ``filter_name``, the filter that removed the last candidate, if one did); False if
    it no longer waits (someone else has it)."""
    waiting = Expect(status=VolumeStatus.CREATING, host=None, worker=None)
    values = {"status": VolumeStatus.ERROR, "error_reason": reason[:_REASON_MAX], **_let_go()}
    if not await transition(session, volume_id, waiting, **values):
        return False
    await give_back_quota(session, volume_id)
    await _record_failure(session, volume_id, Action.SCHEDULE_ALLOCATE_VOLUME, detail, filter_name)
    return True


# The volume managers


async def hold(session: AsyncSession, volume: Volume, worker: str, lease: float) -> bool:
    """``worker`` holds ``volume`` (as read) for ``lease`` seconds; False if it changed since."""
    until = lease_until(lease)
    return await transition(
        session, volume.id, expect_as_read(volume), worker=worker, lease_expires_at=until
    )


async def take_over(
    session: AsyncSession, backend_host: str, worker: str, lease: float
) -> list[Volume]:
    """Every volume of this backend with work (:func:`has_work`) becomes ``worker``'s,
    whoever held it (one manager serves a backend, so its holder was a previous run of it)."""
    ours = (on_backend(backend_host), has_work())
    await session.exec(
        update(Volume).where(*ours).values(worker=worker, lease_expires_at=lease_until(lease))
    )
    query = select(Volume).where(*ours, col(Volume.worker) == worker)
    return list(await session.exec(query.execution_options(populate_existing=True)))


async def renew(session: AsyncSession, worker: str, volume_ids: list[str], lease: float) -> int:
    """Extends the lease of the volumes ``worker`` holds among ``volume_ids``; how many."""
    result = await session.exec(
        update(Volume)
        .where(col(Volume.worker) == worker, col(Volume.id).in_(volume_ids))
        .values(lease_expires_at=lease_until(lease))
    )
    return int(result.rowcount)


async def finish_create(
    session: AsyncSession, volume_id: str, worker: str, service_uuid: str | None
) -> bool:
    """``creating`` (held by ``worker``) -> ``available``, and nobody holds it."""
    held = Expect(status=VolumeStatus.CREATING, worker=worker)
    now = utcnow()
    values = {"status": VolumeStatus.AVAILABLE, "launched_at": now, "service_uuid": service_uuid}
    return await transition(session, volume_id, held, **values, **_let_go())


async def fail_create(session: AsyncSession, volume_id: str, worker: str, reason: str) -> bool:
    """``creating`` (held by ``worker``) -> ``error``, its quota given back, nobody holding it
    and Cinder's message recorded (create volume from backend storage: driver failed to
    create the volume); False if ``worker`` no longer holds it."""
    held = Expect(status=VolumeStatus.CREATING, worker=worker)
    values = {"status": VolumeStatus.ERROR, "error_reason": reason[:_REASON_MAX], **_let_go()}
    if not await transition(session, volume_id, held, **values):
        return False
    await give_back_quota(session, volume_id)
    await _record_failure(
        session, volume_id, Action.CREATE_VOLUME_FROM_BACKEND, Detail.DRIVER_FAILED_CREATE
    )
    return True


async def set_status(
    session: AsyncSession, volume_id: str, expected: str, status: str, worker: str
) -> bool:
    """``expected`` (held by ``worker``) -> ``status``, and nobody holds it."""
    held = Expect(status=expected, worker=worker)
    return await transition(session, volume_id, held, status=status, **_let_go())
