"""Extending a volume (Cinder's ``VolumeManager.extend_volume``), as explicit steps.

    ExtractVolumeRef        reload the row: ``extending``, held by us, with its target size.
                                                                            undo: none
    OnFailureErrorExtending nothing.       undo: ``error_extending``, the increase's quota
                                           rolled back, Cinder's user message recorded
    NotifyVolumeAction      ``resize.start``: a log line and a span event.  undo: none
    ExtendVolumeOnBackend   the driver grows the image.                     undo: none
    ExtendVolumeOnFinish    the new size on the row, the increase's quota committed, back to
                            the previous status; ``resize.end``.            undo: none

The api accepted the extend by moving the row to ``extending`` with the target size and the
quota reservations on it (``cindermesh.db.volume_actions``); the flow runs only while this
manager holds the row, and the one UPDATE that ends it settles the quota, so the quota is
committed or given back exactly once. A flow interrupted (cancelled at stop, or the process
died) leaves the row ``extending`` for recovery to run again: growing an image to a size it
already has is a no-op for both drivers.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from opentelemetry import trace
from opentelemetry.util.types import AttributeValue

from cindermesh.db import volume_actions
from cindermesh.db.models import VolumeStatus
from cindermesh.flow import Step
from services.volume import store
from services.volume.action_services import ActionServices, run_action_flow
from services.volume.errors import VolumeStateChanged

__all__ = ["FLOW_NAME", "ExtendFlowState", "extend_steps", "run_extend"]

FLOW_NAME = "volume.extend_volume"

log = logging.getLogger(__name__)


@dataclass
class ExtendFlowState:
    volume_id: str
    #: ExtractVolumeRef: the size the volume grows from and to.
    size_gb: int = 0
    new_size_gb: int = 0
    #: The failure that made the flow revert.
    error: BaseException | None = None
    #: The volume ended in ``error_extending``.
    errored: bool = False


class _Steps:
    def __init__(self, services: ActionServices) -> None:
        self._s = services

    async def extract_volume_ref(self, state: ExtendFlowState) -> None:
        volume = await store.get_volume(self._s.db, state.volume_id)
        if (
            volume.status != VolumeStatus.EXTENDING
            or volume.worker != self._s.worker
            or volume.extend_to_gb is None
        ):
            raise VolumeStateChanged(volume.id, VolumeStatus.EXTENDING, volume.status)
        state.size_gb, state.new_size_gb = volume.size, volume.extend_to_gb

    async def on_failure(self, state: ExtendFlowState) -> None:
        return None

    async def error_extending(self, state: ExtendFlowState) -> None:
        if isinstance(state.error, asyncio.CancelledError):
            log.info("Volume %s: extend interrupted; left for recovery", state.volume_id)
            return
        async with self._s.db.session() as session:
            state.errored = await volume_actions.end_extend(
                session, state.volume_id, self._s.worker, succeeded=False
            )
        log.error("Volume %s: extend failed: %r", state.volume_id, state.error)
        trace.get_current_span().set_attribute("volume.error_reason", repr(state.error))

    async def notify_start(self, state: ExtendFlowState) -> None:
        _notify(state, "resize.start")

    async def extend_on_backend(self, state: ExtendFlowState) -> None:
        log.info(
            "Volume %s: extending from %d to %d GiB",
            state.volume_id,
            state.size_gb,
            state.new_size_gb,
        )
        try:
            await self._s.driver.extend_volume(state.volume_id, state.new_size_gb)
        except BaseException as error:
            state.error = error
            raise

    async def finish(self, state: ExtendFlowState) -> None:
        async with self._s.db.session() as session:
            done = await volume_actions.end_extend(
                session, state.volume_id, self._s.worker, succeeded=True
            )
        if not done:
            log.info("Volume %s changed meanwhile; extend not recorded", state.volume_id)
            return
        _notify(state, "resize.end")
        log.info("Extend volume completed successfully. volume=%s", state.volume_id)


def _notify(state: ExtendFlowState, event: str) -> None:
    """Cinder's usage notification ``volume.<event>``: a log line and a span event."""
    attributes: dict[str, AttributeValue] = {
        "volume.id": state.volume_id,
        "volume.size_gb": state.new_size_gb,
    }
    trace.get_current_span().add_event(f"volume.{event}", attributes)
    log.info("volume.%s volume=%s size=%d", event, state.volume_id, state.new_size_gb)


def extend_steps(services: ActionServices) -> list[Step[ExtendFlowState]]:
    s = _Steps(services)
    return [
        Step("ExtractVolumeRef", s.extract_volume_ref),
        Step("OnFailureErrorExtending", s.on_failure, s.error_extending),
        Step("NotifyVolumeAction", s.notify_start),
        Step("ExtendVolumeOnBackend", s.extend_on_backend),
        Step("ExtendVolumeOnFinish", s.finish),
    ]


async def run_extend(services: ActionServices, volume_id: str) -> ExtendFlowState:
    """Runs the flow to its end; never raises for a failed extend (the row records it)."""
    state = ExtendFlowState(volume_id=volume_id)
    await run_action_flow(FLOW_NAME, volume_id, extend_steps(services), state)
    return state
