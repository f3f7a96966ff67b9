"""Cinder's manager ``create_snapshot`` and ``delete_snapshot``, as explicit steps.

Create (``volume.create_snapshot``)::

    ExtractSnapshotRef     reload the row; it must be ``creating`` and ours.   undo: none
    OnFailureMarkError     nothing.   undo: the snapshot -> ``error``, with Cinder's user
                           message (create snapshot: Snapshot failed to create.)
    NotifySnapshotAction   ``create.start``: a log line and a span event.     undo: none
    CreateSnapshotOnDriver the driver makes the snapshot image.     undo: remove that image
    CreateSnapshotOnFinish ``available``, ``100%``; ``create.end``.            undo: none

Delete (``volume.delete_snapshot``)::

    ExtractSnapshotRef     reload the row; it must be ``deleting`` and ours.  undo: none
    OnFailureKeepRow       nothing.      undo: ``available`` if the driver found the snapshot
                           busy (dependent volumes, Cinder's SnapshotIsBusy), else
                           ``error_deleting``; the row and its quota stay, and Cinder's
                           user message says why (Snapshot is busy / failed to delete)
    NotifySnapshotAction   ``delete.start``.                                  undo: none
    DeleteSnapshotOnDriver the driver removes the image (already gone is done). undo: none
    DeleteSnapshotOnFinish the row and its metadata go and the quota is given back (once),
                           in one transaction; ``delete.end``.                 undo: none

A snapshot that failed to create keeps its quota until it is deleted, as in Cinder. Every
write checks that this manager still holds the row (``services.volume.snapshot_store``): a
snapshot an admin reset or force-deleted meanwhile is left to whoever has it now.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from opentelemetry import trace
from opentelemetry.util.types import AttributeValue

from cindermesh.db.engine import Database
from cindermesh.db.messages import Action, Detail
from cindermesh.db.models import Snapshot, SnapshotStatus
from cindermesh.flow import Step, run_flow
from cindermesh.settings import QuotaSettings
from cindermesh.telemetry.tracing import tracer
from services.volume import snapshot_store
from services.volume.drivers.base import BlockStorageDriver, SnapshotIsBusy, SnapshotRef
from services.volume.errors import SnapshotStateChanged

__all__ = [
    "CREATE_FLOW",
    "DELETE_FLOW",
    "SnapshotFlowState",
    "SnapshotServices",
    "run_create_snapshot",
    "run_delete_snapshot",
]

CREATE_FLOW = "volume.create_snapshot"
DELETE_FLOW = "volume.delete_snapshot"

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SnapshotServices:
    """What the snapshot steps call; built once per process."""

    db: Database
    driver: BlockStorageDriver
    #: This process's instance id: the ``worker`` of the snapshots it holds.
    worker: str
    #: How snapshots count against quota (``no_snapshot_gb_quota``), for the give-back.
    quotas: QuotaSettings


@dataclass
class SnapshotFlowState:
    snapshot_id: str
    #: ExtractSnapshotRef: the row as it was when the flow started.
    snapshot: Snapshot | None = None
    #: The failure that made the flow revert.
    error: BaseException | None = None
    #: How the flow ended: the snapshot's status, or ``deleted``.
    outcome: str = ""

    @property
    def ref(self) -> SnapshotRef:
        assert self.snapshot is not None
        return snapshot_store.ref_of(self.snapshot)


Execute = Callable[[SnapshotFlowState], Awaitable[None]]


def _recording(execute: Execute) -> Execute:
    """Keeps the failure in the state, for the OnFailure step's undo."""

    async def run(state: SnapshotFlowState) -> None:
        try:
            await execute(state)
        except BaseException as error:
            state.error = error
            raise

    return run


def _notify(state: SnapshotFlowState, event: str) -> None:
    """Cinder's usage notification ``snapshot.<event>``: a log line and a span event."""
    snapshot = state.snapshot
    assert snapshot is not None
    attributes: dict[str, AttributeValue] = {
        "snapshot.id": snapshot.id,
        "volume.id": snapshot.volume_id,
        "snapshot.volume_size_gb": snapshot.volume_size,
        "project.id": snapshot.project_id,
    }
    trace.get_current_span().add_event(f"snapshot.{event}", attributes)
    log.info("snapshot.%s snapshot=%s volume=%s", event, snapshot.id, snapshot.volume_id)


class _Steps:
    def __init__(self, services: SnapshotServices) -> None:
        self._s = services

    def extract_ref(self, status: str) -> Execute:
        async def extract(state: SnapshotFlowState) -> None:
            snapshot = await snapshot_store.get(self._s.db, state.snapshot_id)
            if snapshot.status != status or snapshot.worker != self._s.worker:
                raise SnapshotStateChanged(snapshot.id, status, snapshot.status)
            state.snapshot = snapshot

        return extract

    async def nothing(self, state: SnapshotFlowState) -> None:
        return None

    async def mark_error(self, state: SnapshotFlowState) -> None:
        if isinstance(state.error, asyncio.CancelledError | SnapshotStateChanged):
            return  # interrupted (recovery resumes it), or no longer ours
        reason = f"{type(state.error).__name__}: {state.error}"
        if await snapshot_store.set_status(
            self._s.db,
            state.snapshot_id,
            SnapshotStatus.CREATING,
            SnapshotStatus.ERROR,
            self._s.worker,
            reason,
            (Action.SNAPSHOT_CREATE, Detail.SNAPSHOT_CREATE_ERROR),
        ):
            state.outcome = SnapshotStatus.ERROR
        log.error("snapshot %s: create failed: %s", state.snapshot_id, reason)

    async def notify_create_start(self, state: SnapshotFlowState) -> None:
        log.info("snapshot %s: creating", state.snapshot_id)
        _notify(state, "create.start")

    async def create_on_driver(self, state: SnapshotFlowState) -> None:
        await self._s.driver.create_snapshot(state.ref)

    async def remove_image(self, state: SnapshotFlowState) -> None:
        try:
            await self._s.driver.delete_snapshot(state.ref)
        except Exception:
            log.exception("snapshot %s: removing the image failed", state.snapshot_id)

    async def create_on_finish(self, state: SnapshotFlowState) -> None:
        if not await snapshot_store.finish_create(self._s.db, state.snapshot_id, self._s.worker):
            # Reset or deleted meanwhile: whoever has it now decides (a delete removes the
            # image).
            log.info("snapshot %s: changed meanwhile; left as it is", state.snapshot_id)
            return
        state.outcome = SnapshotStatus.AVAILABLE
        _notify(state, "create.end")
        log.info("snapshot %s: created successfully", state.snapshot_id)

    async def keep_row(self, state: SnapshotFlowState) -> None:
        error = state.error
        if isinstance(error, asyncio.CancelledError | SnapshotStateChanged):
            return
        busy = isinstance(error, SnapshotIsBusy)
        status = SnapshotStatus.AVAILABLE if busy else SnapshotStatus.ERROR_DELETING
        if busy:
            log.error("snapshot %s: delete failed, due to snapshot busy", state.snapshot_id)
        else:
            log.error("snapshot %s: delete failed in the driver: %s", state.snapshot_id, error)
        reason = f"{type(error).__name__}: {error}"
        detail = Detail.SNAPSHOT_IS_BUSY if busy else Detail.SNAPSHOT_DELETE_ERROR
        if await snapshot_store.set_status(
            self._s.db,
            state.snapshot_id,
            SnapshotStatus.DELETING,
            status,
            self._s.worker,
            reason,
            (Action.SNAPSHOT_DELETE, detail),
        ):
            state.outcome = status

    async def notify_delete_start(self, state: SnapshotFlowState) -> None:
        log.info("snapshot %s: deleting", state.snapshot_id)
        _notify(state, "delete.start")

    async def delete_on_driver(self, state: SnapshotFlowState) -> None:
        await self._s.driver.delete_snapshot(state.ref)

    async def delete_on_finish(self, state: SnapshotFlowState) -> None:
        destroyed = await snapshot_store.destroy(
            self._s.db, state.snapshot_id, self._s.worker, self._s.quotas
        )
        trace.get_current_span().set_attribute("snapshot.row_destroyed", destroyed)
        state.outcome = "deleted" if destroyed else state.outcome
        _notify(state, "delete.end")
        log.info("snapshot %s: deleted successfully", state.snapshot_id)


def create_steps(services: SnapshotServices) -> list[Step[SnapshotFlowState]]:
    s = _Steps(services)
    return [
        Step("ExtractSnapshotRef", _recording(s.extract_ref(SnapshotStatus.CREATING))),
        Step("OnFailureMarkError", _recording(s.nothing), s.mark_error),
        Step("NotifySnapshotAction", _recording(s.notify_create_start)),
        Step("CreateSnapshotOnDriver", _recording(s.create_on_driver), s.remove_image),
        Step("CreateSnapshotOnFinish", _recording(s.create_on_finish)),
    ]


def delete_steps(services: SnapshotServices) -> list[Step[SnapshotFlowState]]:
    s = _Steps(services)
    return [
        Step("ExtractSnapshotRef", _recording(s.extract_ref(SnapshotStatus.DELETING))),
        Step("OnFailureKeepRow", _recording(s.nothing), s.keep_row),
        Step("NotifySnapshotAction", _recording(s.notify_delete_start)),
        Step("DeleteSnapshotOnDriver", _recording(s.delete_on_driver)),
        Step("DeleteSnapshotOnFinish", _recording(s.delete_on_finish)),
    ]


async def _run(
    name: str, steps: list[Step[SnapshotFlowState]], snapshot_id: str
) -> SnapshotFlowState:
    state = SnapshotFlowState(snapshot_id=snapshot_id)
    with tracer().start_as_current_span(name, attributes={"snapshot.id": snapshot_id}) as span:
        try:
            await run_flow(name, steps, state)
        except Exception as error:
            span.set_status(trace.Status(trace.StatusCode.ERROR, str(error)))
            log.warning("snapshot %s: %s failed: %s", snapshot_id, name, error)
        span.set_attribute("snapshot.outcome", state.outcome)
    return state


async def run_create_snapshot(services: SnapshotServices, snapshot_id: str) -> SnapshotFlowState:
    """Runs the create flow to its end; never raises for a failed create (the row says)."""
    return await _run(CREATE_FLOW, create_steps(services), snapshot_id)


async def run_delete_snapshot(services: SnapshotServices, snapshot_id: str) -> SnapshotFlowState:
    """Runs the delete flow to its end; never raises for a failed delete (the row says)."""
    return await _run(DELETE_FLOW, delete_steps(services), snapshot_id)
