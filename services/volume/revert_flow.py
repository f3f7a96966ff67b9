"""Reverting a volume to its latest snapshot (Cinder's ``VolumeManager.revert_to_snapshot``),
as explicit steps.

    ExtractVolumeRef      reload the row (``reverting``, held by us) and the snapshot it rolls
                          back to (``restoring``).                          undo: none
    OnFailureError        nothing.       undo: the volume ``error`` and the snapshot
                                         ``available`` again, as Cinder
    NotifyVolumeAction    ``revert.start``: a log line and a span event.   undo: none
    RevertToSnapshot      the driver rolls the image back.                 undo: none
    RevertOnFinish        the volume and the snapshot ``available``; ``revert.end``.
                                                                            undo: none

The api accepted the revert by moving the volume to ``reverting`` and the snapshot to
``restoring`` (``cindermesh.db.volume_actions.start_revert``). Cinder's temporary backup
snapshot (``snapshot_revert_use_temp_snapshot``) is not taken: both drivers revert in place
from the snapshot, which stays. An interrupted revert stays ``reverting`` for recovery to run
again (a revert is idempotent).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from opentelemetry import trace

from cindermesh.db import volume_actions
from cindermesh.db.models import VolumeStatus
from cindermesh.flow import Step
from services.volume import store
from services.volume.action_services import ActionServices, run_action_flow
from services.volume.drivers.base import SnapshotRef
from services.volume.errors import VolumeStateChanged

__all__ = ["FLOW_NAME", "RevertFlowState", "revert_steps", "run_revert"]

FLOW_NAME = "volume.revert_to_snapshot"

log = logging.getLogger(__name__)


@dataclass
class RevertFlowState:
    volume_id: str
    #: ExtractVolumeRef: the snapshot it rolls back to.
    snapshot: SnapshotRef | None = None
    error: BaseException | None = None
    #: The volume ended in ``error``.
    errored: bool = False


class _Steps:
    def __init__(self, services: ActionServices) -> None:
        self._s = services

    async def extract_volume_ref(self, state: RevertFlowState) -> None:
        volume = await store.get_volume(self._s.db, state.volume_id)
        if volume.status != VolumeStatus.REVERTING or volume.worker != self._s.worker:
            raise VolumeStateChanged(volume.id, VolumeStatus.REVERTING, volume.status)
        async with self._s.db.read() as session:
            snapshot = await volume_actions.restoring_snapshot(session, volume.id)
        if snapshot is None:
            raise VolumeStateChanged(volume.id, "a snapshot restoring", "none")
        state.snapshot = SnapshotRef(
            id=snapshot.id, volume_id=volume.id, volume_size_gb=snapshot.volume_size
        )

    async def on_failure(self, state: RevertFlowState) -> None:
        return None

    async def error(self, state: RevertFlowState) -> None:
        if isinstance(state.error, asyncio.CancelledError):
            log.info("Volume %s: revert interrupted; left for recovery", state.volume_id)
            return
        await self._end(state, succeeded=False)
        log.error("Volume %s revert to snapshot failed with %r", state.volume_id, state.error)

    async def _end(self, state: RevertFlowState, succeeded: bool) -> bool:
        assert state.snapshot is not None
        async with self._s.db.session() as session:
            done = await volume_actions.end_revert(
                session, state.volume_id, state.snapshot.id, self._s.worker, succeeded
            )
        state.errored = done and not succeeded
        return done

    async def notify_start(self, state: RevertFlowState) -> None:
        _notify(state, "revert.start")

    async def revert(self, state: RevertFlowState) -> None:
        assert state.snapshot is not None
        log.info("Volume %s: reverting to snapshot %s", state.volume_id, state.snapshot.id)
        try:
            await self._s.driver.revert_to_snapshot(state.volume_id, state.snapshot)
        except BaseException as error:
            state.error = error
            raise

    async def finish(self, state: RevertFlowState) -> None:
        if not await self._end(state, succeeded=True):
            log.info("Volume %s changed meanwhile; revert not recorded", state.volume_id)
            return
        _notify(state, "revert.end")
        assert state.snapshot is not None
        log.info(
            "Volume %s reverted to snapshot %s successfully.", state.volume_id, state.snapshot.id
        )


def _notify(state: RevertFlowState, event: str) -> None:
    snapshot_id = state.snapshot.id if state.snapshot is not None else ""
    attributes = {"volume.id": state.volume_id, "snapshot.id": snapshot_id}
    trace.get_current_span().add_event(f"volume.{event}", attributes)
    log.info("volume.%s volume=%s snapshot=%s", event, state.volume_id, snapshot_id)


def revert_steps(services: ActionServices) -> list[Step[RevertFlowState]]:
    s = _Steps(services)
    return [
        Step("ExtractVolumeRef", s.extract_volume_ref),
        Step("OnFailureError", s.on_failure, s.error),
        Step("NotifyVolumeAction", s.notify_start),
        Step("RevertToSnapshot", s.revert),
        Step("RevertOnFinish", s.finish),
    ]


async def run_revert(services: ActionServices, volume_id: str) -> RevertFlowState:
    """Runs the flow to its end; never raises for a failed revert (the rows record it)."""
    state = RevertFlowState(volume_id=volume_id)
    await run_action_flow(FLOW_NAME, volume_id, revert_steps(services), state)
    return state
