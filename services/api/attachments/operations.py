"""The attachments API's operations, as Cinder's ``volume.API.attachment_*`` with its checks,
order and messages. The rows change in ``cindermesh.db.attachments`` (each change holding the
volume's row); the volume's manager answers the connection information and forgets it
(``VolumeManager.InitializeConnection`` / ``TerminateConnection``), outside any transaction.

What can be rolled back is: a create whose connection failed is undone at once (Cinder leaves
the reservation behind, with no id for the client to delete it); an update that failed leaves
the attachment as it was, for the client's ``DELETE``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

from sqlmodel.ext.asyncio.session import AsyncSession

from cindermesh.db import attachments, volume_actions
from cindermesh.db.engine import Database
from cindermesh.db.models import Volume, VolumeAttachment, VolumeStatus
from cindermesh.errors import (
    BackendFailed,
    BackendUnavailable,
    CindermeshError,
    Conflict,
    InvalidInput,
    InvalidVolume,
    NotFound,
)
from services.api.attachments.body import NULL_MODE, AttachmentCreateInput
from services.api.attachments.listing import ATTACHMENTS
from services.api.clients import VolumeManagerClients
from services.api.edge.request_context import RequestContext
from services.api.policy import authorize
from services.api.schema import JsonValue
from services.api.volumes.listing import ListPage, ListQuery, list_page
from services.api.volumes.lookups import find_volume, manager_address

__all__ = ["RULES", "Answer", "AttachmentOperations", "connect", "flatten", "terminate"]

log = logging.getLogger(__name__)


class RULES:
    """The policy rules the attachments API authorizes (Cinder's names)."""

    CREATE = "volume:attachment_create"
    UPDATE = "volume:attachment_update"
    DELETE = "volume:attachment_delete"
    COMPLETE = "volume:attachment_complete"
    MULTIATTACH_BOOTABLE = "volume:multiattach_bootable_volume"


def _target(volume: Volume | VolumeAttachment) -> dict[str, object]:
    return {"project_id": volume.project_id}


def _not_found(attachment_id: str) -> NotFound:
    return NotFound(
        f"Volume attachment could not be found with filter: attachment_id = {attachment_id}."
    )


@dataclass(frozen=True)
class Answer:
    """What a create or update answers: Cinder's controller answers the attachment as it read
    it before the manager connected it (``reserved``, no time), with the connection
    information the manager gave."""

    attachment: VolumeAttachment
    connection_info: dict[str, JsonValue] | None = None


def _failed(what: str, error: CindermeshError) -> BackendFailed:
    """Cinder's 500 when the manager failed: ``<what> (<the exception's text>).``, the
    backend's failure being a VolumeBackendAPIException; an unreachable manager (Cinder's RPC
    timeout, no text of its own): ``<what>.`` in Cinder's other words."""
    if isinstance(error, BackendUnavailable):
        plain = what.replace("update attachment", "update the attachment")
        return BackendFailed(f"{plain}.", error.message)
    reason = error.message
    if isinstance(error, BackendFailed):
        reason = f"Bad or unexpected response from the storage volume backend API: {error.reason}"
    return BackendFailed(f"{what} ({reason}).", reason)


def flatten(connection_info: Mapping[str, JsonValue], attachment_id: str) -> dict[str, JsonValue]:
    """Cinder's ``_connection_create``: the driver's ``data`` keys at the top, next to
    ``driver_volume_type``, with the attachment's id and ``enforce_multipath``."""
    flat = dict(connection_info)
    data = flat.pop("data", {})
    result: dict[str, JsonValue] = dict(data) if isinstance(data, dict) else {}
    result.update(flat)
    result["attachment_id"] = attachment_id
    result.setdefault("enforce_multipath", False)
    return result


async def connect(
    db: Database,
    managers: VolumeManagerClients,
    attachment: VolumeAttachment,
    address: str | None,
    connector: Mapping[str, JsonValue],
) -> dict[str, JsonValue]:
    """Cinder's manager ``attachment_update``: the attachment's mode (else the connector's,
    else ``rw``) goes into the connector, the manager answers the connection information,
    and the attachment records both (``attaching``, the volume too). Raises what the
    manager's client raises (nothing written then), NotFound if the attachment went."""
    given = dict(connector)
    mode = str(given.get("mode") or "rw")
    if attachment.attach_mode not in (None, NULL_MODE):
        mode = attachment.attach_mode
        given["mode"] = mode
    if address is None:
        raise BackendUnavailable("The volume's backend is not registered.")
    info = await managers.initialize_connection(address, attachment.volume_id, given)
    flat = flatten(info, attachment.id)
    flat["enforce_multipath"] = given.get("enforce_multipath", False)
    async with db.session() as session:
        if not await attachments.connect(session, attachment, given, flat, mode):
            raise _not_found(attachment.id)
    return flat


class AttachmentOperations:
    def __init__(self, db: Database, managers: VolumeManagerClients) -> None:
        self._db = db
        self._managers = managers

    async def _find(
        self, session: AsyncSession, ctx: RequestContext, attachment_id: str
    ) -> VolumeAttachment:
        """The attachment, if the caller may see it (its project's, or an admin)."""
        attachment = await attachments.find(session, attachment_id)
        if attachment is None or not (
            ctx.caller.is_admin or attachment.project_id == ctx.project_id
        ):
            raise _not_found(attachment_id)
        return attachment

    async def get(
        self, ctx: RequestContext, attachment_id: str
    ) -> tuple[VolumeAttachment, str | None]:
        """The attachment and its volume's ``format`` admin metadata (Cinder's show adds it)."""
        async with self._db.read() as session:
            attachment = await self._find(session, ctx, attachment_id)
            admin = await volume_actions.admin_metadata(session, [attachment.volume_id])
        return attachment, admin[attachment.volume_id].get("format")

    async def page(self, ctx: RequestContext, query: ListQuery) -> ListPage[VolumeAttachment]:
        async with self._db.read() as session:
            return await list_page(session, ctx, query, ATTACHMENTS)

    async def create(self, ctx: RequestContext, given: AttachmentCreateInput) -> Answer:
        """Cinder's ``attachment_create``: reserves the volume (``_attachment_reserve``) and,
        with a connector, connects it at once."""
        async with self._db.session() as session:
            volume = await find_volume(session, ctx, given.volume_id)
            authorize(ctx, RULES.CREATE, _target(volume))
            if "error" in volume.status:
                raise InvalidVolume(
                    "Volume attachments can not be created if the volume is in an error "
                    f"state. The Volume {volume.id} currently has a status of: "
                    f"{volume.status} "
                )
            if volume.multiattach and volume.status == VolumeStatus.IN_USE and volume.bootable:
                authorize(ctx, RULES.MULTIATTACH_BOOTABLE, _target(volume))
            admin = await volume_actions.admin_metadata(session, [volume.id])
            readonly = admin[volume.id].get("readonly") == "True"
            mode = "ro" if readonly else given.mode
            attachment = await attachments.reserve(session, volume, given.instance_uuid, mode)
            if attachment is None:
                statuses = " or ".join(attachments.reservable_statuses(volume.multiattach))
                raise InvalidVolume(
                    f"Volume {volume.id} status must be {statuses} to reserve, but the "
                    f"current status is {volume.status}."
                )
            address = await manager_address(session, volume.host)
        log.info("Attachment %s reserved for volume %s", attachment.id, volume.id)
        if given.connector is None:
            return Answer(attachment)
        try:
            info = await connect(self._db, self._managers, attachment, address, given.connector)
        except CindermeshError as error:
            await self._undo_reserve(attachment)
            raise _failed("Unable to create attachment for volume", error) from error
        return Answer(attachment, info)

    async def _undo_reserve(self, attachment: VolumeAttachment) -> None:
        async with self._db.session() as session:
            await attachments.remove(session, attachment.volume_id, attachment.id)
        log.warning("Attachment %s undone: its connection failed", attachment.id)

    async def update(
        self, ctx: RequestContext, attachment_id: str, connector: Mapping[str, JsonValue]
    ) -> Answer:
        """Cinder's ``attachment_update``: refused for a volume in error (409) and, for a
        volume that is not multiattach, when another attachment already has a connection."""
        async with self._db.read() as session:
            attachment = await self._find(session, ctx, attachment_id)
            authorize(ctx, RULES.UPDATE, _target(attachment))
            volume = await session.get(Volume, attachment.volume_id)
            if volume is None:
                raise _not_found(attachment_id)
            if "error" in volume.status:
                raise Conflict(
                    "Resource conflict: Volume attachments can not be updated if the volume is "
                    "in an error "
                    f"state. The Volume {volume.id} currently has a status of: "
                    f"{volume.status} "
                )
            siblings = (await attachments.attachments_of(session, [volume.id]))[volume.id]
            if (
                len(siblings) > 1
                and not volume.multiattach
                and any(a.connection_info for a in siblings)
            ):
                raise Conflict(
                    f"Resource conflict: duplicate connectors detected on volume {volume.id}"
                )
            address = await manager_address(session, volume.host)
        try:
            info = await connect(self._db, self._managers, attachment, address, connector)
        except InvalidInput:
            raise
        except CindermeshError as error:
            raise _failed("Unable to update attachment", error) from error
        log.info("attachment_update completed successfully. attachment=%s", attachment_id)
        return Answer(attachment, info)

    async def complete(self, ctx: RequestContext, attachment_id: str) -> None:
        """Cinder's ``os-complete``: the attachment ``attached``, the volume ``in-use``."""
        async with self._db.session() as session:
            attachment = await self._find(session, ctx, attachment_id)
            await find_volume(session, ctx, attachment.volume_id)
            authorize(ctx, RULES.COMPLETE, _target(attachment))
            if not await attachments.complete(session, attachment):
                raise _not_found(attachment_id)
        log.info("Attachment %s completed", attachment_id)

    async def delete(self, ctx: RequestContext, attachment_id: str) -> list[VolumeAttachment]:
        """Cinder's ``attachment_delete``: the manager forgets the connection (an attachment
        never connected needs no call; a manager that fails is logged and ignored, as
        Cinder's ``remove_export``), then the attachment goes and the volume's status follows
        those left; answers those left."""
        async with self._db.read() as session:
            attachment = await self._find(session, ctx, attachment_id)
            authorize(ctx, RULES.DELETE, _target(attachment))
            volume = await session.get(Volume, attachment.volume_id)
            address = await manager_address(session, volume.host if volume else None)
        connector = attachments.connector_of(attachment)
        if connector is not None:
            await terminate(self._managers, address, attachment.volume_id, connector)
        async with self._db.session() as session:
            await attachments.remove(session, attachment.volume_id, attachment.id)
            left = (await attachments.attachments_of(session, [attachment.volume_id]))[
                attachment.volume_id
            ]
        log.info("Attachment %s deleted", attachment_id)
        return left


async def terminate(
    managers: VolumeManagerClients,
    address: str | None,
    volume_id: str,
    connector: Mapping[str, JsonValue] | None,
    force: bool = False,
) -> None:
    """The manager forgets the connector's connection; a failure is logged, never raised
    (the host is gone or the backend down: the attachment must still be deletable)."""
    if address is None:
        log.warning("volume %s: no manager registered; connection not terminated", volume_id)
        return
    try:
        await managers.terminate_connection(
            address, volume_id, dict(connector or {}) or None, force
        )
    except CindermeshError as error:
        log.warning("volume %s: terminate connection failed, ignored: %s", volume_id, error)
