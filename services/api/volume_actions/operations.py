"""The api's volume actions: each checks what Cinder's ``volume.API`` checks, in its order and
with its messages, and changes the row with one conditional UPDATE
(``cindermesh.db.volume_actions``) inside the transaction that read it. Extend and revert then
hand the volume to its manager (the row is the durable record: an unreachable manager finds
it on its next sweep).

Cinder checks each action's policy after it found the volume (a 404 before a 403); the
servicer declares them as domain policies, authorized here on the volume's project.
"""

from __future__ import annotations

import logging

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from cindermesh.db import attachments, migrations_state, quota, volume_actions, volumes
from cindermesh.db.engine import Database
from cindermesh.db.models import AttachStatus, Volume, VolumeStatus, VolumeType
from cindermesh.db.volume_types import encryption_of, type_extra_specs
from cindermesh.errors import (
    BackendFailed,
    BackendUnavailable,
    Conflict,
    InvalidInput,
    InvalidVolume,
    NotFound,
    QuotaExceeded,
)
from cindermesh.settings import QuotaSettings
from cindermesh_pb.scheduler.v1 import scheduler_pb2
from services.api.attachments.operations import terminate
from services.api.clients import INITIALIZE_FAILED_MESSAGE, SchedulerClient, VolumeManagerClients
from services.api.edge.request_context import RequestContext
from services.api.policy import authorize
from services.api.schema import JsonValue, invalid_input
from services.api.volume_actions import retype
from services.api.volume_actions.body import ForceDetachRequest, StatusReset
from services.api.volume_actions.retype import pool_capabilities, satisfies
from services.api.volumes.lookups import (
    find_volume,
    find_volume_type,
    manager_address,
)
from services.api.volumes.operations import VolumeOperations

__all__ = ["RULES", "VolumeActions"]

log = logging.getLogger(__name__)


class RULES:
    """The policy rules the actions authorize (Cinder's names)."""

    EXTEND = "volume:extend"
    EXTEND_ATTACHED = "volume:extend_attached_volume"
    RESET_STATUS = "volume_extension:volume_admin_actions:reset_status"
    FORCE_DELETE = "volume_extension:volume_admin_actions:force_delete"
    UPDATE = "volume:update"
    UPDATE_READONLY = "volume:update_readonly_flag"
    RETYPE = "volume:retype"
    MULTIATTACH = "volume:multiattach"
    REVERT = "volume:revert_to_snapshot"
    RESERVE = "volume_extension:volume_actions:reserve"
    UNRESERVE = "volume_extension:volume_actions:unreserve"
    BEGIN_DETACHING = "volume_extension:volume_actions:begin_detaching"
    ROLL_DETACHING = "volume_extension:volume_actions:roll_detaching"
    DETACH = "volume_extension:volume_actions:detach"
    ATTACH = "volume_extension:volume_actions:attach"
    INITIALIZE = "volume_extension:volume_actions:initialize_connection"
    TERMINATE = "volume_extension:volume_actions:terminate_connection"
    FORCE_DETACH = "volume_extension:volume_admin_actions:force_detach"


#: Cinder's ``os-reset_status`` refuses these (its tuple lacks a comma: only ``deleting``).
_NOT_RESETTABLE = ("deleting", "error_deletingdetaching")
_RETYPE_REFUSED = (
    "Retype needs volume to be in available or in-use state, not be part of an active "
    "migration or a consistency group, requested type has to be different that the one from "
    "the volume, and for in-use volumes front-end qos specs cannot change."
)
_QUOTA_PREFIX = "VolumeSizeExceedsAvailableQuota: "
_SEVERAL_ATTACHMENTS = (
    "Detach volume failed: More than one attachment, but no attachment_id provided."
)


def _target(volume: Volume) -> dict[str, object]:
    return {"project_id": volume.project_id, "user_id": volume.user_id}


async def _type_of(session: AsyncSession, volume: Volume) -> tuple[str, dict[str, str]]:
    name = (
        await session.exec(select(VolumeType.name).where(VolumeType.id == volume.volume_type_id))
    ).first()
    return name or "", await type_extra_specs(session, volume.volume_type_id)


def _check_size_limits(type_name: str, specs: dict[str, str], size: int) -> None:
    """Cinder's ``provision_filter_on_size``: the type's ``provisioning:min/max_vol_size``."""
    minimum = specs.get("provisioning:min_vol_size")
    if minimum and size < int(minimum):
        raise invalid_input(
            f"Specified volume size of '{size}' is less than the minimum required size of "
            f"'{minimum}' for volume type '{type_name}'."
        )
    maximum = specs.get("provisioning:max_vol_size")
    if maximum and size > int(maximum):
        raise invalid_input(
            f"Specified volume size of '{size}' is greater than the maximum allowable size of "
            f"'{maximum}' for volume type '{type_name}'."
        )


def _check_retype(
    ctx: RequestContext, volume: Volume, type_name: str, specs: dict[str, str], encrypted: bool
) -> bool:
    """Cinder's api checks of a retype to a type (``specs``); the new ``multiattach``."""
    _check_size_limits(type_name, specs, volume.size)
    multiattach = specs.get("multiattach") == "<is> True"
    if volume.multiattach != multiattach:
        if volume.status != VolumeStatus.AVAILABLE:
            raise invalid_input(
                "Invalid volume_type passed, retypes affecting multiattach are only allowed "
                "on available volumes, the specified volume however currently has a status "
                f"of: {volume.status}."
            )
        if multiattach:
            authorize(ctx, RULES.MULTIATTACH, _target(volume))
    if multiattach and encrypted:
        raise invalid_input(
            "Retype requested both encryption and multi-attach, which is not supported."
        )
    return multiattach


class VolumeActions:
    def __init__(
        self,
        db: Database,
        quotas: QuotaSettings,
        managers: VolumeManagerClients,
        scheduler: SchedulerClient,
        volumes: VolumeOperations,
    ) -> None:
        self._db = db
        self._quotas = quotas
        self._managers = managers
        self._scheduler = scheduler
        self._volumes = volumes

    # Extend

    async def extend(self, ctx: RequestContext, volume_id: str, new_size: int) -> None:
        """Cinder's ``_extend``: the size must grow, within the type's and the project's
        limits; ``available`` (``in-use`` from 3.42) -> ``extending`` with the increase's
        ``gigabytes`` quota reserved, then the manager grows the image."""
        async with self._db.session() as session:
            found = await find_volume(session, ctx, volume_id)
            attached = ctx.version.at_least(42) and found.status == VolumeStatus.IN_USE
            authorize(ctx, RULES.EXTEND_ATTACHED if attached else RULES.EXTEND, _target(found))
            volume = await volumes.locked(session, found.id)
            if volume is None:
                raise NotFound(f"Volume {volume_id} could not be found.")
            if new_size - volume.size <= 0:
                raise invalid_input(
                    "New size for extend must be greater than current size. "
                    f"(current: {volume.size}, extended: {new_size})."
                )
            type_name, specs = await _type_of(session, volume)
            _check_size_limits(type_name, specs, new_size)
            expected = VolumeStatus.IN_USE if attached else VolumeStatus.AVAILABLE
            if volume.status != expected:
                raise InvalidVolume(
                    f"Volume {volume.id} status must be '{{'status': '{expected}'}}' to "
                    f"extend, currently {volume.status}."
                )
            reservations = await self._reserve_increase(
                session, volume, type_name, new_size - volume.size
            )
            if not await volume_actions.start_extend(session, volume, new_size, reservations):
                raise InvalidVolume(f"Volume {volume.id} changed while being extended.")
            address = await manager_address(session, volume.host)
        log.info("Extend volume request issued successfully. volume=%s", volume_id)
        if address is None:
            log.warning("volume %s: no manager registered for %s", volume_id, volume.host)
            return
        try:
            await self._managers.extend_volume(address, volume_id, new_size)
        except BackendUnavailable:
            log.warning("volume %s: manager %s unreachable; left extending", volume_id, address)

    async def _reserve_increase(
        self, session: AsyncSession, volume: Volume, type_name: str, increase: int
    ) -> list[str]:
        limits = await quota.limits_for(session, volume.project_id, self._quotas)
        per_volume = limits.get("per_volume_gigabytes", quota.UNLIMITED)
        new_size = volume.size + increase
        if per_volume != quota.UNLIMITED and new_size > per_volume:
            raise QuotaExceeded(
                f"Requested volume size {new_size}G is larger than maximum allowed limit "
                f"{per_volume}G."
            )
        deltas = {"gigabytes": increase, f"gigabytes_{type_name}": increase}
        try:
            return await quota.reserve(
                session, volume.project_id, deltas, self._quotas, limits=limits
            )
        except QuotaExceeded as over:
            raise QuotaExceeded(over.message.removeprefix(_QUOTA_PREFIX)) from None

    # Admin actions

    async def reset_status(self, ctx: RequestContext, volume_id: str, reset: StatusReset) -> None:
        """Cinder's ``os-reset_status``: an admin sets the statuses as given (``in-use`` only
        for a volume with attachments); ``attach_status`` ``detached`` also removes every
        attachment, the statuses then following them."""
        async with self._db.session() as session:
            found = await find_volume(session, ctx, volume_id)
            authorize(ctx, RULES.RESET_STATUS, _target(found))
            if reset.status in _NOT_RESETTABLE:
                raise InvalidInput(f"Cannot reset-state to {reset.status}")
            held = (await attachments.attachments_of(session, [found.id]))[found.id]
            if reset.status == VolumeStatus.IN_USE and not held:
                raise InvalidInput(
                    "Cannot reset-state to in-use because volume does not have any attachments."
                )
            volume = await volumes.locked(session, found.id)
            if volume is None or not await volume_actions.reset_status(
                session, volume, reset.values()
            ):
                raise NotFound(f"Volume {volume_id} could not be found.")
            if reset.attach_status == AttachStatus.DETACHED:
                await attachments.clear(session, volume.id)
        log.info("Updating volume '%s' with %r", volume_id, reset.values())

    async def force_delete(self, ctx: RequestContext, volume_id: str) -> None:
        """Cinder's ``os-force_delete``: the delete without its status check."""
        async with self._db.read() as session:
            found = await find_volume(session, ctx, volume_id)
        authorize(ctx, RULES.FORCE_DELETE, _target(found))
        await self._volumes.delete_marked(ctx, volume_id, forced=True)

    # Flags

    async def set_bootable(self, ctx: RequestContext, volume_id: str, bootable: bool) -> None:
        """Cinder's ``update`` of ``bootable``: not during maintenance."""
        async with self._db.session() as session:
            volume = await find_volume(session, ctx, volume_id)
            authorize(ctx, RULES.UPDATE, _target(volume))
            if not await volume_actions.set_bootable(session, volume.id, bootable):
                raise InvalidVolume("The volume cannot be updated during maintenance.")

    async def update_readonly(self, ctx: RequestContext, volume_id: str, readonly: bool) -> None:
        """Cinder's ``update_readonly_flag``: the ``readonly`` admin metadata (``True`` or
        ``False``) of an ``available`` volume."""
        async with self._db.session() as session:
            volume = await find_volume(session, ctx, volume_id)
            authorize(ctx, RULES.UPDATE_READONLY, _target(volume))
            available = volume_actions.status_is(VolumeStatus.AVAILABLE)
            if not await volume_actions.touch(session, volume.id, available):
                raise InvalidVolume(
                    f"Volume {volume.id} status must be available to update readonly flag, "
                    f"but current status is: {volume.status}."
                )
            await volume_actions.set_admin_metadata(session, volume.id, "readonly", str(readonly))

    # Retype

    async def retype(
        self, ctx: RequestContext, volume_id: str, new_type: str, policy: str | None
    ) -> None:
        """Cinder's ``retype``: where the volume can stay where it is (its pool satisfies the
        new type and the encryption does not change), the type changes and the per-type quota
        moves, at once. Otherwise, with ``migration_policy=on-demand``, an ``available``
        volume without snapshots is migrated to a pool that satisfies the new type
        (:meth:`_migrate`); with ``never`` (or no pool, an attached volume, snapshots) it is
        left as it was, as Cinder's scheduler and manager leave it."""
        async with self._db.read() as session:
            volume = await find_volume(session, ctx, volume_id)
            authorize(ctx, RULES.RETYPE, _target(volume))
            target = await find_volume_type(session, ctx, new_type)
            specs = await type_extra_specs(session, target.id)
            encryption = await encryption_of(session, (volume.volume_type_id, target.id))
        multiattach = _check_retype(ctx, volume, target.name, specs, target.id in encryption)
        same_encryption = encryption.get(volume.volume_type_id) == encryption.get(target.id)
        in_place = same_encryption
        pools = await self._scheduler.get_pools()
        if in_place:
            capabilities = pool_capabilities(pools, volume.host or "")
            in_place = capabilities is not None and satisfies(capabilities, specs)
        async with self._db.session() as session:
            locked = await volumes.locked(session, volume.id)
            if locked is None:
                raise NotFound(f"Volume {volume_id} could not be found.")
            if not in_place and volume_actions.retypable(locked, target.id):
                # The api's checks passed; the move is Cinder's scheduler's and manager's.
                if policy in (None, "never"):
                    log.warning(
                        "Retype of volume %s to %s requires migration but is not allowed.",
                        volume_id,
                        target.name,
                    )
                    return
                address = await self._start_migration(
                    session, locked, target, specs, pools, same_encryption
                )
                if address is None:
                    return
            else:
                if not await volume_actions.change_type(session, locked, target, self._quotas):
                    raise InvalidVolume(_RETYPE_REFUSED)
                if locked.multiattach != multiattach:
                    await volume_actions.set_multiattach(session, locked.id, multiattach)
                address = None
        if address is not None:
            await self._hand_migration(volume_id, address)
        log.info("Retype volume request issued successfully. volume=%s", volume_id)

    async def _start_migration(
        self,
        session: AsyncSession,
        volume: Volume,
        target: VolumeType,
        specs: dict[str, str],
        pools: list[scheduler_pb2.PoolInfo],
        same_encryption: bool,
    ) -> str | None:
        """Records a retype's migration on the row (``migrations_state.start``, in the
        retype's transaction); the destination manager's address, or None (logged, nothing
        changed) when the volume cannot migrate, as Cinder's scheduler and manager refuse."""
        refused = None
        if not same_encryption:
            # Cinder re-encrypts through attached copies (os-brick); a raw copy cannot.
            refused = "a migration that changes the encryption is not supported here"
        elif volume.status != VolumeStatus.AVAILABLE:
            refused = "only available volumes migrate here (an attached one needs Nova)"
        elif await volume_actions.latest_snapshot(session, volume.id) is not None:
            refused = "Volume must not have snapshots."
        destination = None
        if refused is None:
            destination = retype.destination(pools, volume.host or "", specs, volume.size)
            if destination is None:
                refused = "No valid backend was found. No weighed backends available"
        address = None
        if destination is not None:
            address = await manager_address(session, destination)
            if address is None:
                refused = f"no manager registered for {destination}"
        if refused is not None or destination is None or address is None:
            log.warning("Retype of volume %s to %s failed: %s", volume.id, target.name, refused)
            return None
        if not await migrations_state.start(session, volume, destination, target, self._quotas):
            raise InvalidVolume(_RETYPE_REFUSED)
        log.info("Volume %s: migrating from %s to %s", volume.id, volume.host, destination)
        return address

    async def _hand_migration(self, volume_id: str, address: str) -> None:
        """Hands the migration to the destination's manager; one that refuses or cannot be
        reached ends it at once (``error``, the volume as it was)."""
        try:
            await self._managers.migrate_volume(address, volume_id)
            return
        except BackendUnavailable as error:
            log.warning("volume %s: migration not accepted by %s: %s", volume_id, address, error)
        async with self._db.session() as session:
            await migrations_state.fail(session, volume_id, None)

    # Revert

    async def revert(self, ctx: RequestContext, volume_id: str, snapshot_id: str | None) -> None:
        """Cinder's ``revert`` (3.40): to the volume's latest snapshot only, of the same size;
        the volume ``reverting`` and the snapshot ``restoring`` until its manager is done."""
        async with self._db.session() as session:
            volume = await find_volume(session, ctx, volume_id)
            latest = await volume_actions.latest_snapshot(session, volume.id)
            if latest is None:
                raise InvalidInput(f"Volume {volume.id} doesn't have any snapshots.")
            if snapshot_id is None or snapshot_id != latest.id:
                raise InvalidInput(
                    f"Specified snapshot {snapshot_id} is None or not the latest one of "
                    f"volume {volume.id}."
                )
            if volume.size != latest.volume_size:
                raise InvalidInput(
                    f"Can't revert volume {volume.id} to its latest snapshot {latest.id}. The "
                    "volume size must be equal to the snapshot size."
                )
            authorize(ctx, RULES.REVERT, _target(volume))
            refused = await volume_actions.start_revert(session, volume, latest)
            if refused is not None:
                which = "Volume" if refused == "volume" else "Snapshot"
                kind = "volume" if refused == "volume" else "snapshot"
                raise Conflict(
                    f"Invalid {kind}: Can't revert volume {volume.id} to its latest snapshot "
                    f"{latest.id}. {which}'s status must be 'available'."
                )
            address = await manager_address(session, volume.host)
        log.info("Reverting volume %s to snapshot %s.", volume_id, latest.id)
        if address is None:
            log.warning("volume %s: no manager registered for %s", volume_id, volume.host)
            return
        try:
            await self._managers.revert_volume(address, volume_id, latest.id)
        except BackendUnavailable:
            log.warning("volume %s: manager %s unreachable; left reverting", volume_id, address)

    # Attach state machine (the legacy actions; the attachments API: services.api.attachments)

    async def reserve(self, ctx: RequestContext, volume_id: str) -> None:
        """``available`` (or ``in-use`` if multiattach) -> ``attaching``."""
        async with self._db.session() as session:
            volume = await find_volume(session, ctx, volume_id)
            authorize(ctx, RULES.RESERVE, _target(volume))
            if not await attachments.reserve_legacy(session, volume):
                statuses = attachments.reservable_statuses(volume.multiattach, legacy=True)
                raise InvalidVolume(
                    f"Volume status must be {' or '.join(statuses)} to reserve, but the status "
                    f"is {volume.status}."
                )

    async def unreserve(self, ctx: RequestContext, volume_id: str) -> None:
        """``attaching`` -> ``in-use`` with attachments, else ``available``; a volume not
        reserved: nothing to do."""
        async with self._db.session() as session:
            volume = await find_volume(session, ctx, volume_id)
            authorize(ctx, RULES.UNRESERVE, _target(volume))
            if not await attachments.unreserve(session, volume.id):
                log.debug("volume %s: unreserve of a volume not reserved", volume_id)

    async def begin_detaching(self, ctx: RequestContext, volume_id: str) -> None:
        """``in-use`` and ``attached`` -> ``detaching`` (a migrating volume: nothing)."""
        async with self._db.session() as session:
            volume = await find_volume(session, ctx, volume_id)
            authorize(ctx, RULES.BEGIN_DETACHING, _target(volume))
            if not await attachments.begin_detaching(session, volume.id) and (
                volume.migration_status in volume_actions.AVAILABLE_MIGRATION_STATUSES
            ):
                raise InvalidVolume(
                    "Unable to detach volume. Volume status must be 'in-use' and "
                    "attach_status must be 'attached' to detach."
                )

    async def roll_detaching(self, ctx: RequestContext, volume_id: str) -> None:
        """``detaching`` -> ``in-use``; anything else: nothing to do."""
        async with self._db.session() as session:
            volume = await find_volume(session, ctx, volume_id)
            authorize(ctx, RULES.ROLL_DETACHING, _target(volume))
            await attachments.roll_detaching(session, volume.id)

    async def attach(
        self, ctx: RequestContext, volume_id: str, request: attachments.LegacyAttach
    ) -> None:
        """Cinder's ``attach``: not in maintenance; a ``readonly`` volume only ``ro``; then
        its manager's ``attach_volume`` (rows only: the host already connected)."""
        async with self._db.session() as session:
            volume = await find_volume(session, ctx, volume_id)
            authorize(ctx, RULES.ATTACH, _target(volume))
            if volume.status == VolumeStatus.MAINTENANCE:
                raise InvalidVolume("The volume cannot be attached in maintenance mode.")
            admin = (await volume_actions.admin_metadata(session, [volume.id]))[volume.id]
            if "readonly" not in admin:
                await volume_actions.set_admin_metadata(session, volume.id, "readonly", "False")
            if admin.get("readonly") == "True" and request.mode != "ro":
                raise InvalidInput(
                    f"Invalid attaching mode '{request.mode}' for volume {volume.id}."
                )
            attached = await attachments.attach(session, volume.id, request)
            if isinstance(attached, str):
                raise InvalidInput(
                    f"Error attaching volume - InvalidVolume: Invalid volume: {attached}"
                )
        log.info("Attach volume completed successfully. volume=%s", volume_id)

    async def initialize_connection(
        self, ctx: RequestContext, volume_id: str, connector: dict[str, JsonValue]
    ) -> dict[str, JsonValue]:
        """Cinder's ``initialize_connection``: the manager's connection information, with
        ``enforce_multipath``; no row changes."""
        async with self._db.read() as session:
            volume = await find_volume(session, ctx, volume_id)
            authorize(ctx, RULES.INITIALIZE, _target(volume))
            if volume.status == VolumeStatus.MAINTENANCE:
                raise InvalidVolume(
                    "The volume connection cannot be initialized in maintenance mode."
                )
            address = await manager_address(session, volume.host)
        if address is None:
            raise BackendFailed(INITIALIZE_FAILED_MESSAGE, "no manager registered")
        info = await self._managers.initialize_connection(address, volume.id, connector)
        data = info.get("data")
        if isinstance(data, dict):
            data["enforce_multipath"] = connector.get("enforce_multipath", False)
        info["enforce_multipath"] = connector.get("enforce_multipath", False)
        log.info("Initialize volume connection completed successfully. volume=%s", volume_id)
        return info

    async def terminate_connection(
        self, ctx: RequestContext, volume_id: str, connector: dict[str, JsonValue] | None
    ) -> None:
        """Cinder's ``terminate_connection``: the manager forgets the connection (its
        failure is the caller's 500), then the volume is unreserved."""
        async with self._db.read() as session:
            volume = await find_volume(session, ctx, volume_id)
            authorize(ctx, RULES.TERMINATE, _target(volume))
            await _check_deletion_allowed(session, volume, None)
        await self._terminate(volume, connector)

    async def _terminate(
        self, volume: Volume, connector: dict[str, JsonValue] | None, forced: bool = False
    ) -> None:
        """The manager forgets the connection (``forced``: even if it cannot be reached, so
        that an admin can always detach a volume of a backend that is down), then the volume
        is unreserved."""
        async with self._db.read() as session:
            address = await manager_address(session, volume.host)
        if address is not None:
            try:
                await self._managers.terminate_connection(address, volume.id, connector, False)
            except BackendUnavailable:
                if not forced:
                    raise
                log.warning("volume %s: manager unreachable; force detach goes on", volume.id)
        async with self._db.session() as session:
            await attachments.unreserve(session, volume.id)
        log.info("Terminate volume connection completed successfully. volume=%s", volume.id)

    async def detach(self, ctx: RequestContext, volume_id: str, attachment_id: str | None) -> None:
        """Cinder's ``detach``: not in maintenance; then its manager's ``detach_volume``."""
        async with self._db.read() as session:
            volume = await find_volume(session, ctx, volume_id)
            authorize(ctx, RULES.DETACH, _target(volume))
            await _check_deletion_allowed(session, volume, attachment_id)
            if volume.status == VolumeStatus.MAINTENANCE:
                raise InvalidVolume("The volume cannot be detached in maintenance mode.")
        refused = await self._detach(volume, attachment_id)
        if refused is not None:
            raise InvalidInput(f"Error detaching volume - InvalidVolume: Invalid volume: {refused}")

    async def force_detach(
        self, ctx: RequestContext, volume_id: str, request: ForceDetachRequest
    ) -> None:
        """Cinder's ``os-force_detach``: terminate the connection, then detach the attachment
        given (or the only one), whatever the volume's status but maintenance."""
        async with self._db.read() as session:
            volume = await find_volume(session, ctx, volume_id)
            authorize(ctx, RULES.FORCE_DETACH, _target(volume))
            # Cinder's terminate_connection checks the volume's attachments (not the one named).
            await _check_deletion_allowed(session, volume, None)
        await self._terminate(volume, request.connector, forced=True)
        async with self._db.read() as session:
            await _check_deletion_allowed(session, volume, request.attachment_id)
        if volume.status == VolumeStatus.MAINTENANCE:
            raise InvalidVolume("The volume cannot be detached in maintenance mode.")
        refused = await self._detach(volume, request.attachment_id)
        if refused is not None:
            raise InvalidInput(
                f"Error force detaching volume - InvalidVolume: Invalid volume: {refused}"
            )

    async def _detach(self, volume: Volume, attachment_id: str | None) -> str | None:
        """Cinder's manager ``detach_volume``: the attachment named (gone already: the
        statuses are set again), else the volume's only one (several: refused, the reason
        returned; none: the volume ``available`` and ``detached``); its connection is
        terminated, then it goes."""
        async with self._db.read() as session:
            held = (await attachments.attachments_of(session, [volume.id]))[volume.id]
        if attachment_id is None:
            if len(held) > 1:
                return (
                    "Detach volume failed: More than one attachment, but no attachment_id provided."
                )
            if not held:
                async with self._db.session() as session:
                    await attachments.detach_unattached(session, volume.id)
                log.info("Volume detach called, but volume not attached. volume=%s", volume.id)
                return None
            attachment_id = held[0].id
        chosen = next((a for a in held if a.id == attachment_id), None)
        if chosen is not None and (connector := attachments.connector_of(chosen)) is not None:
            async with self._db.read() as session:
                address = await manager_address(session, volume.host)
            await terminate(self._managers, address, volume.id, connector)
        async with self._db.session() as session:
            await attachments.remove(session, volume.id, attachment_id)
        log.info("Detach volume completed successfully. volume=%s", volume.id)
        return None


#: Cinder's ConflictNovaUsingAttachment (bug #2004555) when it cannot tell which attachment.
_USE_THE_COMPUTE_API = "Detach volume from instance {} using the Compute API"


async def _check_deletion_allowed(
    session: AsyncSession, volume: Volume, attachment_id: str | None
) -> None:
    """Cinder's ``attachment_deletion_allowed`` for the legacy actions: the attachment named
    (else the volume's only one) must be the volume's; none found while the volume has
    attachments (several of them, or an id that is not one) is refused (409), as Cinder
    refuses a user's call. Two parts of Cinder's rule are not cindermesh's: a service token
    (cindermesh does not read one, so no call is a service's) and its question to Nova
    whether the server still uses the attachment (cindermesh has no Nova client: an
    attachment found may go, as Cinder lets it when Nova does not know it)."""
    if attachment_id is None:
        held = (await attachments.attachments_of(session, [volume.id]))[volume.id]
        if not held:
            return
        if len(held) > 1:
            raise Conflict(_USE_THE_COMPUTE_API.format(""))
        return
    attachment = await attachments.find(session, attachment_id)
    if attachment is None:
        raise Conflict(_USE_THE_COMPUTE_API.format(""))
    if attachment.volume_id != volume.id:
        raise invalid_input("Mismatched volume and attachment")
