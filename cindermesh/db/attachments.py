"""A volume's attachments and its attach state machine (Cinder's ``volume_attach``,
``volume_attached``, ``volume_detached`` and the api's conditional updates), for the api.

One rule keeps the rows in agreement: every function changes a volume's attachments only
while holding the volume's row (``SELECT ... FOR UPDATE``, taken here), and writes the
volume's ``status``/``attach_status`` in the same transaction, so concurrent attaches and
detaches of one volume run one after the other and each sees what the previous one wrote.

The statuses, as Cinder's:

* reserve (``POST /attachments``): the volume ``reserved``, a new attachment ``reserved``;
* connect (a connector given): the attachment and the volume ``attaching``;
* complete (``os-complete``): the attachment ``attached``, the volume ``in-use``/``attached``;
* legacy ``os-attach``: a new attachment ``attached`` at once, the volume ``in-use``;
* remove (``DELETE /attachments/{id}``, ``os-detach``): the attachment is deleted and the
  volume's statuses follow the attachments left (:func:`statuses_from`).

Every function runs inside the caller's transaction (``Database.session()``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, delete, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from cindermesh.db.models import (
    AttachStatus,
    Volume,
    VolumeAdminMetadata,
    VolumeAttachment,
    VolumeStatus,
    utcnow,
)
from cindermesh.db.volume_actions import admin_metadata, not_migrating, set_admin_metadata

__all__ = [
    "attach",
    "attachments_of",
    "begin_detaching",
    "clear",
    "complete",
    "connect",
    "connection_info_of",
    "connector_of",
    "detach_unattached",
    "find",
    "remove",
    "reservable_statuses",
    "reserve",
    "reserve_legacy",
    "roll_detaching",
    "statuses_from",
    "unreserve",
]

#: Cinder's ``ATTACH_STATUS_MAP``: a volume's status for its attach status, where they differ.
_STATUS_OF_ATTACH_STATUS = {
    AttachStatus.ATTACHED: VolumeStatus.IN_USE,
    AttachStatus.DETACHED: VolumeStatus.AVAILABLE,
}

#: The admin metadata ``os-attach`` records its mode in (Cinder's ``attached_mode``).
ATTACHED_MODE = "attached_mode"


async def _lock(session: AsyncSession, volume_id: str) -> Volume | None:
    return await session.get(Volume, volume_id, with_for_update=True, populate_existing=True)


async def _write_volume(
    session: AsyncSession, volume_id: str, where: Sequence[ColumnElement[bool]], **values: object
) -> bool:
    query = update(Volume).where(col(Volume.id) == volume_id, *where)
    result = await session.exec(query.values(updated_at=utcnow(), **values))
    return int(result.rowcount) == 1


# Reading


async def find(session: AsyncSession, attachment_id: str) -> VolumeAttachment | None:
    return await session.get(VolumeAttachment, attachment_id)


async def attachments_of(
    session: AsyncSession, volume_ids: Sequence[str]
) -> dict[str, list[VolumeAttachment]]:
    """Each volume's attachments, oldest first."""
    found: dict[str, list[VolumeAttachment]] = {volume_id: [] for volume_id in volume_ids}
    if not volume_ids:
        return found
    query = (
        select(VolumeAttachment)
        .where(col(VolumeAttachment.volume_id).in_(volume_ids))
        .order_by(col(VolumeAttachment.created_at), col(VolumeAttachment.id))
    )
    for attachment in await session.exec(query):
        found[attachment.volume_id].append(attachment)
    return found


def connector_of(attachment: VolumeAttachment) -> dict[str, Any] | None:
    """The connector the host gave, if any."""
    return json.loads(attachment.connector) if attachment.connector else None


def connection_info_of(attachment: VolumeAttachment) -> dict[str, Any]:
    """The connection information (``{}`` before a connector was given)."""
    return json.loads(attachment.connection_info) if attachment.connection_info else {}


def statuses_from(attachments: Sequence[VolumeAttachment]) -> tuple[str, str]:
    """Cinder's ``_get_statuses_from_attachments``: the volume's ``(status, attach_status)``
    for its attachments, ignoring the ``error_*`` ones (never used by a host): the first
    attach status in alphabetical order (attached > attaching > detaching > reserved), or
    ``detached`` with none."""
    live = sorted(a.attach_status for a in attachments if not a.attach_status.startswith("error_"))
    attach_status = live[0] if live else AttachStatus.DETACHED
    return _STATUS_OF_ATTACH_STATUS.get(attach_status, attach_status), attach_status


# The attachments API


def reservable_statuses(multiattach: bool, legacy: bool = False) -> tuple[str, ...]:
    """The statuses a reserve takes a volume from (``POST /attachments`` also takes a volume
    ``downloading``; ``os-reserve`` does not)."""
    statuses: tuple[str, ...] = (VolumeStatus.AVAILABLE,)
    if multiattach:
        statuses += (VolumeStatus.IN_USE,)
    return statuses if legacy else (*statuses, "downloading")


async def reserve(
    session: AsyncSession, volume: Volume, instance_uuid: str | None, attach_mode: str | None
) -> VolumeAttachment | None:
    """Cinder's ``_attachment_reserve``: the volume (as read, in a reservable status) ->
    ``reserved`` and a new ``reserved`` attachment; or, a volume ``in-use``/``reserved`` that
    already has an attachment for ``instance_uuid`` (a server moving to another host): a
    second attachment, the volume as it is. None if neither (nothing written)."""
    locked = await _lock(session, volume.id)
    if locked is None:
        return None
    statuses = reservable_statuses(locked.multiattach)
    if locked.status in statuses:
        await _write_volume(session, locked.id, [], status=VolumeStatus.RESERVED)
    elif not (
        instance_uuid
        and locked.status in (VolumeStatus.IN_USE, VolumeStatus.RESERVED)
        and any(a.instance_uuid == instance_uuid for a in await _attachments(session, locked.id))
    ):
        return None
    attachment = VolumeAttachment(
        volume_id=locked.id,
        project_id=locked.project_id,
        instance_uuid=instance_uuid,
        volume_host=locked.host,
        attach_status=AttachStatus.RESERVED,
        attach_mode=attach_mode,
    )
    session.add(attachment)
    await session.flush()
    return attachment


async def _attachments(session: AsyncSession, volume_id: str) -> list[VolumeAttachment]:
    return (await attachments_of(session, [volume_id]))[volume_id]


async def connect(
    session: AsyncSession,
    attachment: VolumeAttachment,
    connector: Mapping[str, Any],
    connection_info: Mapping[str, Any],
    attach_mode: str,
) -> bool:
    """Cinder's ``_connection_create`` and ``volume_attached(mark_attached=False)``: the
    attachment records the connector, the connection information, the host, mountpoint and
    mode, and goes ``attaching`` with its volume. False if the attachment is gone."""
    locked = await _lock(session, attachment.volume_id)
    current = await session.get(VolumeAttachment, attachment.id, populate_existing=True)
    if locked is None or current is None:
        return False
    current.attach_status = AttachStatus.ATTACHING
    current.connector = json.dumps(dict(connector))
    current.connection_info = json.dumps(dict(connection_info))
    current.attached_host = str(connector.get("host") or "")
    current.mountpoint = str(connector.get("mountpoint") or "na")
    current.attach_mode = attach_mode
    current.attach_time = utcnow()
    current.updated_at = utcnow()
    session.add(current)
    values = {"status": VolumeStatus.ATTACHING, "attach_status": AttachStatus.ATTACHING}
    await _write_volume(session, locked.id, [], **values)
    return True


async def complete(session: AsyncSession, attachment: VolumeAttachment) -> bool:
    """Cinder's ``os-complete``: the attachment ``attached``, its volume ``in-use`` and
    ``attached``. False if the attachment is gone."""
    locked = await _lock(session, attachment.volume_id)
    current = await session.get(VolumeAttachment, attachment.id, populate_existing=True)
    if locked is None or current is None:
        return False
    current.attach_status = AttachStatus.ATTACHED
    current.updated_at = utcnow()
    session.add(current)
    values = {"status": VolumeStatus.IN_USE, "attach_status": AttachStatus.ATTACHED}
    await _write_volume(session, locked.id, [], **values)
    return True


async def remove(session: AsyncSession, volume_id: str, attachment_id: str | None) -> bool:
    """Cinder's ``volume_detached``: deletes the attachment (if it is still there) and sets
    the volume's statuses from the attachments left; a volume being migrated or uploaded
    keeps its status when none is left (its flow sets it). The ``attached_mode`` admin
    metadata goes. Whether the attachment was there."""
    locked = await _lock(session, volume_id)
    if locked is None:
        return False
    removed = 0
    if attachment_id is not None:
        query = delete(VolumeAttachment).where(
            col(VolumeAttachment.id) == attachment_id,
            col(VolumeAttachment.volume_id) == volume_id,
        )
        removed = int((await session.exec(query)).rowcount)
    await _settle(session, locked)
    return removed == 1


async def _settle(session: AsyncSession, volume: Volume) -> None:
    status, attach_status = statuses_from(await _attachments(session, volume.id))
    values: dict[str, object] = {"attach_status": attach_status}
    if (
        attach_status != AttachStatus.DETACHED
        or (not volume.migration_status and volume.status != "uploading")
        or volume.migration_status in ("success", "error")
    ):
        values["status"] = status
    await _write_volume(session, volume.id, [], **values)
    await session.exec(
        delete(VolumeAdminMetadata).where(
            col(VolumeAdminMetadata.volume_id) == volume.id,
            col(VolumeAdminMetadata.key) == ATTACHED_MODE,
        )
    )


async def clear(session: AsyncSession, volume_id: str) -> None:
    """Cinder's ``os-reset_status`` to ``detached``: every attachment of the volume goes, the
    statuses follow (as :func:`remove` of each; a volume without any keeps its statuses)."""
    locked = await _lock(session, volume_id)
    if locked is None or not await _attachments(session, volume_id):
        return
    await session.exec(delete(VolumeAttachment).where(col(VolumeAttachment.volume_id) == volume_id))
    await _settle(session, locked)


# The legacy actions (os-reserve, os-attach, os-unreserve, os-begin_detaching, ...)


async def reserve_legacy(session: AsyncSession, volume: Volume) -> bool:
    """Cinder's ``reserve_volume``: ``available`` (also ``in-use`` for a multiattach volume)
    -> ``attaching``; no attachment yet (``os-attach`` makes it)."""
    expected = [
        col(Volume.status).in_(reservable_statuses(volume.multiattach, legacy=True)),
        col(Volume.multiattach).is_(volume.multiattach),
    ]
    return await _write_volume(session, volume.id, expected, status=VolumeStatus.ATTACHING)


@dataclass(frozen=True)
class LegacyAttach:
    """What ``os-attach`` says of the attachment (its body, as parsed), ``mode`` ``rw`` by
    default."""

    instance_uuid: str | None
    host_name: str | None
    mountpoint: str
    mode: str


async def attach(
    session: AsyncSession, volume_id: str, request: LegacyAttach
) -> VolumeAttachment | str:
    """Cinder's manager ``attach_volume``: the volume's attachment for the same server (or,
    without one, the same host) if it has one (the volume ``in-use``); else a new attachment,
    ``attached`` at once, with the volume ``in-use``/``attached`` and its ``attached_mode``.
    A reason (Cinder's InvalidVolume text) if refused: a volume ``in-use``, not multiattach;
    a mode other than the one it is being attached in."""
    locked = await _lock(session, volume_id)
    if locked is None:
        return "volume is gone"
    existing = await _attachments(session, volume_id)
    for attachment in existing:
        same_server = request.instance_uuid and attachment.instance_uuid == request.instance_uuid
        same_host = not request.instance_uuid and attachment.attached_host == request.host_name
        if same_server or same_host:
            await _write_volume(session, volume_id, [], status=VolumeStatus.IN_USE)
            return attachment
    mode = (await admin_metadata(session, [volume_id]))[volume_id].get(ATTACHED_MODE)
    if locked.status == VolumeStatus.ATTACHING and mode and mode != request.mode:
        return "being attached by different mode"
    if (
        locked.status == VolumeStatus.IN_USE
        and not locked.multiattach
        and not (locked.migration_status)
    ):
        return "volume is already attached and multiple attachments are not enabled"
    now = utcnow()
    attachment = VolumeAttachment(
        volume_id=volume_id,
        project_id=locked.project_id,
        instance_uuid=request.instance_uuid,
        attached_host=request.host_name,
        mountpoint=request.mountpoint,
        attach_mode=request.mode,
        attach_status=AttachStatus.ATTACHED,
        volume_host=locked.host,
        attach_time=now,
        updated_at=now,
    )
    session.add(attachment)
    await set_admin_metadata(session, volume_id, ATTACHED_MODE, request.mode)
    values = {"status": VolumeStatus.IN_USE, "attach_status": AttachStatus.ATTACHED}
    await _write_volume(session, volume_id, [], **values)
    await session.flush()
    return attachment


async def unreserve(session: AsyncSession, volume_id: str) -> bool:
    """Cinder's ``unreserve_volume``: ``attaching`` -> ``in-use`` if the volume has
    attachments (not ``detached``), else ``available``; False if it was not ``attaching``."""
    locked = await _lock(session, volume_id)
    if locked is None or locked.status != VolumeStatus.ATTACHING:
        return False
    attached = any(
        a.attach_status != AttachStatus.DETACHED for a in await _attachments(session, volume_id)
    )
    status = VolumeStatus.IN_USE if attached else VolumeStatus.AVAILABLE
    return await _write_volume(session, volume_id, [], status=status)


async def begin_detaching(session: AsyncSession, volume_id: str) -> bool:
    """``in-use``, ``attached`` and not migrating -> ``detaching``."""
    expected = [
        col(Volume.status) == VolumeStatus.IN_USE,
        col(Volume.attach_status) == AttachStatus.ATTACHED,
        not_migrating(),
    ]
    return await _write_volume(session, volume_id, expected, status=VolumeStatus.DETACHING)


async def roll_detaching(session: AsyncSession, volume_id: str) -> bool:
    """``detaching`` -> ``in-use``."""
    expected = [col(Volume.status) == VolumeStatus.DETACHING]
    return await _write_volume(session, volume_id, expected, status=VolumeStatus.IN_USE)


#: Statuses a detach of a volume without attachments leaves alone: a manager's work.
_BUSY = (
    VolumeStatus.MAINTENANCE,
    VolumeStatus.CREATING,
    VolumeStatus.DELETING,
    VolumeStatus.EXTENDING,
    VolumeStatus.REVERTING,
    VolumeStatus.RETYPING,
)


async def detach_unattached(session: AsyncSession, volume_id: str) -> bool:
    """Cinder's manager ``detach_volume`` of a volume without attachments: ``available`` and
    ``detached``, unless a manager works on it."""
    expected = [col(Volume.status).not_in(_BUSY)]
    values = {"status": VolumeStatus.AVAILABLE, "attach_status": AttachStatus.DETACHED}
    return await _write_volume(session, volume_id, expected, **values)
