"""Migrating a volume to this backend (Cinder's ``migrate_volume`` with
``_migrate_volume_generic``, ``migrate_volume_completion`` and the retype's last update), as
explicit steps run by the DESTINATION manager:

    ExtractMigrationRef      reload the row: ``retyping``, ``migrating`` to this backend, held
                             by us; its source host and size.                     undo: none
    OnFailureErrorMigrating  nothing.    undo: the volume back to its previous status where it
                             was, with its old type, ``migration_status`` ``error``, the new
                             type's quota reservations rolled back
    LocateSourceManager      the source manager's address (services table).       undo: none
    CreateDestinationVolume  the driver creates the empty image here.
                                            undo: the image removed (unless the row moved here)
    CopyVolumeData           the source streams its image (``ReadVolumeData``), chunk by chunk
                             into this driver (``services.volume.data_copy``).    undo: none
    MigrateVolumeCompletion  one UPDATE: the row on this host with the new type, previous
                             status, ``migration_status`` ``success``, the quota moved to the
                             new type.                                            undo: none
    DeleteSourceVolume       the source manager removes its image (``DeleteMigratedSource``);
                             never fails: a source that does not answer removes it at its next
                             start (``recovery.orphans``: the row is no longer placed there).

The api accepted the migration by writing it on the row (``cindermesh.db.migrations_state``)
and handed it to this manager (``MigrateVolume``); the row records it until it ends. A manager
that dies mid-migration finds the volume ``migrating`` to it when it starts again and ends the
migration as ``error`` (:meth:`MigrationWork.recover`); the source image is untouched until the
row is placed here, and the partial image here is removed as an orphan. One the api could not
hand over (``starting``, nobody holding it) is taken by this manager's sweep.

The source manager's side is :meth:`MigrationWork.read` (the stream, only while the volume is
``retyping`` away from it) and :meth:`MigrationWork.delete_source`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import Any

from opentelemetry import trace

from cindermesh.db import migrations_state
from cindermesh.db.engine import Database
from cindermesh.db.models import Volume, VolumeStatus
from cindermesh.flow import Step
from cindermesh.telemetry.request_id import new_request_id, request_id_var
from cindermesh_pb.volume.v1 import volume_manager_pb2
from services.volume import data_copy, store
from services.volume.action_services import run_action_flow
from services.volume.domain import backend_of
from services.volume.drivers.base import BlockStorageDriver
from services.volume.errors import VolumeStateChanged

__all__ = [
    "FLOW_NAME",
    "MigrateFlowState",
    "MigrationServices",
    "MigrationWork",
    "migrate_steps",
    "run_migrate",
]

FLOW_NAME = "volume.migrate_volume"
GIB = 1024**3

log = logging.getLogger(__name__)

Work = Coroutine[Any, Any, None]


@dataclass(frozen=True)
class MigrationServices:
    db: Database
    driver: BlockStorageDriver
    #: This process's instance id: the ``worker`` of the volumes it holds.
    worker: str
    #: host@backend this manager serves.
    backend_host: str
    #: This manager's services row (the migrated volume's ``service_uuid``).
    service_uuid: str | None = None
    #: How the source manager is reached and the data copied (tests replace them).
    locate: Callable[[Database, str], Coroutine[Any, Any, str | None]] = data_copy.manager_address
    copy: Callable[
        [str, BlockStorageDriver, str, int], Coroutine[Any, Any, data_copy.CopyResult]
    ] = data_copy.copy_from
    delete_source: Callable[[str, str], Coroutine[Any, Any, None]] = data_copy.delete_source


@dataclass
class MigrateFlowState:
    volume_id: str
    #: ExtractMigrationRef.
    source_host: str = ""
    destination_host: str = ""
    size_gb: int = 0
    #: LocateSourceManager.
    source_address: str = ""
    #: CreateDestinationVolume made the image here.
    created: bool = False
    copied: data_copy.CopyResult | None = None
    #: MigrateVolumeCompletion moved the row here: nothing may be undone any more.
    completed: bool = False
    #: The failure that made the flow revert.
    error: BaseException | None = None
    #: The migration ended as ``error`` (the undo wrote it).
    errored: bool = False


class _Steps:
    def __init__(self, services: MigrationServices) -> None:
        self._s = services

    async def extract(self, state: MigrateFlowState) -> None:
        volume = await store.get_volume(self._s.db, state.volume_id)
        if (
            volume.status != VolumeStatus.RETYPING
            or volume.migration_status != migrations_state.MIGRATING
            or volume.worker != self._s.worker
            or volume.migration_host is None
            or backend_of(volume.migration_host) != self._s.backend_host
            or volume.host is None
        ):
            raise VolumeStateChanged(volume.id, VolumeStatus.RETYPING, volume.status)
        state.source_host, state.destination_host = volume.host, volume.migration_host
        state.size_gb = volume.size
        span = trace.get_current_span()
        span.set_attribute("migration.source_host", state.source_host)
        span.set_attribute("migration.destination_host", state.destination_host)
        span.set_attribute("volume.size_gb", state.size_gb)

    async def on_failure(self, state: MigrateFlowState) -> None:
        return None

    async def error_migrating(self, state: MigrateFlowState) -> None:
        if state.completed:
            return
        async with self._s.db.session() as session:
            state.errored = await migrations_state.fail(session, state.volume_id, self._s.worker)
        log.error("Volume %s: migration failed: %r", state.volume_id, state.error)
        trace.get_current_span().set_attribute("volume.error_reason", repr(state.error))

    async def locate_source(self, state: MigrateFlowState) -> None:
        address = await self._s.locate(self._s.db, state.source_host)
        if address is None:
            missing = data_copy.SourceUnreachable(f"no manager registered for {state.source_host}")
            raise self._failed(state, missing)
        state.source_address = address
        trace.get_current_span().set_attribute("migration.source_address", address)

    async def create_destination(self, state: MigrateFlowState) -> None:
        try:
            await self._s.driver.create_volume(state.volume_id, state.size_gb)
        except BaseException as error:
            raise self._failed(state, error) from None
        state.created = True

    async def remove_destination(self, state: MigrateFlowState) -> None:
        if state.completed:
            return
        # Also when the create failed half-way: deleting an image that is not there succeeds.
        await self._s.driver.delete_volume(state.volume_id)

    async def copy_data(self, state: MigrateFlowState) -> None:
        size_bytes = state.size_gb * GIB
        try:
            state.copied = await self._s.copy(
                state.source_address, self._s.driver, state.volume_id, size_bytes
            )
        except BaseException as error:
            raise self._failed(state, error) from None
        span = trace.get_current_span()
        span.set_attribute("migration.bytes_written", state.copied.written_bytes)
        span.set_attribute("migration.chunks", state.copied.chunks)

    async def completion(self, state: MigrateFlowState) -> None:
        async with self._s.db.session() as session:
            done = await migrations_state.complete(
                session, state.volume_id, self._s.worker, self._s.service_uuid
            )
        if not done:
            raise self._failed(
                state, VolumeStateChanged(state.volume_id, VolumeStatus.RETYPING, "changed")
            )
        state.completed = True
        log.info(
            "Migrate volume completed successfully. volume=%s host=%s",
            state.volume_id,
            state.destination_host,
        )

    async def delete_source(self, state: MigrateFlowState) -> None:
        try:
            await self._s.delete_source(state.source_address, state.volume_id)
        except Exception as error:
            log.warning(
                "Volume %s: source image on %s not removed (%r); its manager removes it at "
                "its next start",
                state.volume_id,
                state.source_host,
                error,
            )
            trace.get_current_span().set_attribute("migration.source_left", True)

    @staticmethod
    def _failed(state: MigrateFlowState, error: BaseException) -> BaseException:
        state.error = error
        return error


def migrate_steps(services: MigrationServices) -> list[Step[MigrateFlowState]]:
    s = _Steps(services)
    return [
        Step("ExtractMigrationRef", s.extract),
        Step("OnFailureErrorMigrating", s.on_failure, s.error_migrating),
        Step("LocateSourceManager", s.locate_source),
        Step("CreateDestinationVolume", s.create_destination, s.remove_destination),
        Step("CopyVolumeData", s.copy_data),
        Step("MigrateVolumeCompletion", s.completion),
        Step("DeleteSourceVolume", s.delete_source),
    ]


async def run_migrate(services: MigrationServices, volume_id: str) -> MigrateFlowState:
    """Runs the flow to its end; never raises for a failed migration (the row records it).
    Cancelled (the manager stops), it still ends the migration as ``error``."""
    state = MigrateFlowState(volume_id=volume_id)
    await run_action_flow(FLOW_NAME, volume_id, migrate_steps(services), state)
    return state


class MigrationWork:
    """The migrations of a volume manager: those to its backend (it runs their flow, as a
    task among the manager's, keyed by the volume id so that its lease is renewed), and the
    source side of those away from it."""

    def __init__(
        self,
        services: MigrationServices,
        lease: float,
        tasks: Mapping[str, asyncio.Task[None]],
        spawn: Callable[[str, Work], None],
        on_capacity_change: Callable[[], None],
    ) -> None:
        self._s = services
        self._lease = lease
        self._tasks = tasks
        self._spawn = spawn
        self._on_capacity_change = on_capacity_change

    async def accept(self, volume_id: str) -> None:
        """Claims the migration of ``volume_id`` to this backend and starts its flow; raises
        VolumeNotFound or VolumeStateChanged if it is not migrating here (or another worker
        holds it)."""
        if volume_id in self._tasks:
            log.info("Volume %s: migration already in progress", volume_id)
            return
        async with self._s.db.session() as session:
            volume = await migrations_state.claim(
                session, volume_id, self._s.backend_host, self._s.worker, self._lease
            )
        if volume is None:
            found = await store.get_volume(self._s.db, volume_id)
            raise VolumeStateChanged(volume_id, VolumeStatus.RETYPING, found.status)
        if volume_id not in self._tasks:
            self._spawn(volume_id, self._migrate(volume_id))

    async def _migrate(self, volume_id: str) -> None:
        await run_migrate(self._s, volume_id)
        self._on_capacity_change()

    async def recover(self) -> None:
        """At start: a migration to this backend that a previous run held ends as ``error``
        (the source intact; the partial image here is an orphan the recovery removes)."""
        async with self._s.db.read() as session:
            found = await migrations_state.migrating_to(session, self._s.backend_host)
        for volume in found:
            if volume.worker is None:
                continue  # never taken: the sweep runs it
            async with self._s.db.session() as session:
                ended = await migrations_state.fail(session, volume.id, None)
            if ended:
                log.warning("Volume %s: interrupted migration to here ended as error", volume.id)

    async def sweep_once(self) -> None:
        """Takes the migrations to this backend the api could not hand over (nobody holds
        them)."""
        async with self._s.db.read() as session:
            found = await migrations_state.migrating_to(session, self._s.backend_host)
        for volume in found:
            if volume.worker is not None or volume.id in self._tasks:
                continue
            request_id_var.set(new_request_id())
            try:
                await self.accept(volume.id)
            except Exception as error:
                log.info("Volume %s: migration not taken: %r", volume.id, error)

    # The source side.

    async def _migrating_away(self, volume_id: str) -> Volume:
        volume = await store.get_volume(self._s.db, volume_id)
        here = volume.host is not None and backend_of(volume.host) == self._s.backend_host
        if (
            volume.status != VolumeStatus.RETYPING
            or volume.migration_status != migrations_state.MIGRATING
            or not here
        ):
            raise VolumeStateChanged(volume_id, VolumeStatus.RETYPING, volume.status)
        return volume

    async def read(
        self, volume_id: str
    ) -> AsyncGenerator[volume_manager_pb2.VolumeDataChunk, None]:
        """The chunks of a volume being migrated away from here (raises VolumeNotFound or
        VolumeStateChanged before the first one if it is not)."""
        volume = await self._migrating_away(volume_id)
        return data_copy.read_chunks(self._s.driver, volume.id, volume.size * GIB)

    async def delete_source(self, volume_id: str) -> None:
        """Removes the image of a volume migrated away (its row placed elsewhere, or gone)."""
        hosts = await store.volume_hosts(self._s.db, [volume_id])
        host = hosts.get(volume_id)
        if host is not None and backend_of(host) == self._s.backend_host:
            raise VolumeStateChanged(volume_id, "migrated", "still placed here")
        await self._s.driver.delete_volume(volume_id)
        self._on_capacity_change()
        log.info("Volume %s: source image of a migrated volume removed", volume_id)
