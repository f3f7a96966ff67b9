"""Cinder's manager create flow (``volume_create_manager``), as explicit steps.

    ExtractVolumeRef     reload the row; it must still be ``creating``.      undo: none
    OnFailureReschedule  nothing.                 undo: hand back to the schedulers, or ``error``
    ExtractVolumeSpec    what to create: ``raw``, ``snap`` or ``source_vol``.  undo: none
    NotifyVolumeAction   ``create.start``: a log line and a span event.      undo: none
    CreateVolumeFromSpec the driver creates the image: ``create_volume``, or from the source
                         ``create_volume_from_snapshot`` / ``create_cloned_volume`` (Cinder's
                         ``_create_raw_volume`` / ``_create_from_snapshot`` /
                         ``_create_from_source_volume``).              undo: remove the image
    CreateVolumeOnFinish ``available``, ``launched_at``; ``create.end``.    undo: none

The flow runs only while this manager holds the volume (``services.volume.store``): every
write checks it, so a manager that lost the volume meanwhile changes nothing and only removes
its own image.

On a failure the undos run newest first (``cindermesh.flow``), so a partly created image is
removed before the volume goes back to the scheduler. The reschedule rule is Cinder's: any
failure except ``NotReschedulable`` ones is handed back (on the row: no host, one attempt
more, this pool tried), then offered to the scheduler; if the scheduler cannot be reached the
row waits for a scheduler's sweep. The scheduler alone decides when attempts have run out
(``scheduler_max_attempts``). A ``NotReschedulable`` failure puts the row in ``error`` with
``error_reason`` and gives its quota back once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace

from opentelemetry import trace
from opentelemetry.util.types import AttributeValue

from cindermesh.db.engine import Database
from cindermesh.db.models import Volume, VolumeStatus
from cindermesh.flow import Step, run_flow
from cindermesh.telemetry.tracing import tracer
from services.volume import store
from services.volume.domain import CreateRequest
from services.volume.drivers.base import BlockStorageDriver, SnapshotRef, SourceVolumeRef
from services.volume.errors import VolumeStateChanged, is_reschedulable
from services.volume.scheduler_client import SchedulerClient
from services.volume.sources import snapshot_ref, source_volume_ref

__all__ = ["FLOW_NAME", "CreateFlowState", "FlowServices", "VolumeSpec", "run_create"]

FLOW_NAME = "volume.create_volume"

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FlowServices:
    """What the steps call; built once per process."""

    db: Database
    driver: BlockStorageDriver
    scheduler: SchedulerClient
    #: This process's instance id: the ``worker`` of the volumes it holds.
    worker: str
    #: This service's uuid, recorded on the volumes it creates.
    service_uuid: str | None = None


#: Cinder's create types (``volume_spec['type']``).
RAW, SNAP, SOURCE_VOL = "raw", "snap", "source_vol"


@dataclass(frozen=True)
class VolumeSpec:
    """ExtractVolumeSpec's result (Cinder's ``volume_spec``)."""

    status: str
    type: str
    volume_id: str
    volume_name: str
    volume_size: int
    #: ``snap``: the snapshot to create from.
    snapshot: SnapshotRef | None = field(default=None, repr=False)
    #: ``source_vol``: the volume to clone, and its status (Cinder's ``source_volstatus``).
    source: SourceVolumeRef | None = field(default=None, repr=False)
    source_volstatus: str | None = None

    def specification(self) -> dict[str, str | int]:
        """Cinder's ``volume_spec`` without its ``type``, as its log line shows it."""
        shown: dict[str, str | int] = {
            "status": self.status,
            "volume_id": self.volume_id,
            "volume_name": self.volume_name,
            "volume_size": self.volume_size,
        }
        if self.snapshot is not None:
            shown["snapshot_id"] = self.snapshot.id
        if self.source is not None and self.source_volstatus is not None:
            shown["source_volid"] = self.source.id
            shown["source_volstatus"] = self.source_volstatus
        return shown


@dataclass
class CreateFlowState:
    """Everything the steps hand to each other."""

    request: CreateRequest
    #: ExtractVolumeRef: the row as it was when the flow started.
    volume: Volume | None = None
    #: ExtractVolumeSpec.
    spec: VolumeSpec | None = None
    #: The failure that made the flow revert.
    error: BaseException | None = None
    #: The volume was handed back to the scheduler.
    rescheduled: bool = False
    #: The volume ended in ``error``.
    errored: bool = False


def _recording(
    execute: Callable[[CreateFlowState], Awaitable[None]],
) -> Callable[[CreateFlowState], Awaitable[None]]:
    """Keeps the failure in the state, for OnFailureReschedule's undo."""

    async def run(state: CreateFlowState) -> None:
        try:
            await execute(state)
        except BaseException as error:
            state.error = error
            raise

    return run


class _Steps:
    def __init__(self, services: FlowServices) -> None:
        self._s = services

    async def extract_volume_ref(self, state: CreateFlowState) -> None:
        volume = await store.get_volume(self._s.db, state.request.volume_id)
        if volume.status != VolumeStatus.CREATING or volume.worker != self._s.worker:
            raise VolumeStateChanged(volume.id, VolumeStatus.CREATING, volume.status)
        state.volume = volume

    async def on_failure_reschedule(self, state: CreateFlowState) -> None:
        return None

    async def reschedule_or_error(self, state: CreateFlowState) -> None:
        request, error = state.request, state.error
        reason = f"{type(error).__name__}: {error}" if error else "unknown failure"
        span = trace.get_current_span()
        if isinstance(error, asyncio.CancelledError):
            log.info("Volume %s: create interrupted; left for recovery", request.volume_id)
            return
        if not is_reschedulable(error or Exception()):
            await self._error(state, f"Volume {request.volume_id}: create failed: {reason}")
            return
        retry = await store.hand_back(
            self._s.db, request.volume_id, self._s.worker, request.host, reason
        )
        if retry is None:
            log.info("Volume %s changed meanwhile; not rescheduling it", request.volume_id)
            return
        log.debug(
            "Volume %s: re-scheduling attempt %d due to %s",
            request.volume_id,
            retry.num_attempts + 1,
            reason,
        )
        span.set_attributes({"volume.rescheduled": True, "retry.num_attempts": retry.num_attempts})
        state.rescheduled = True
        try:
            await self._s.scheduler.reschedule(request, retry)
        except Exception as failure:
            # The row waits for a scheduler: the sweep of any replica places it.
            log.warning(
                "Volume %s: the scheduler did not take it back (%s); a sweep will",
                request.volume_id,
                failure,
            )

    async def _error(self, state: CreateFlowState, reason: str) -> None:
        state.errored = await store.mark_error(
            self._s.db, state.request.volume_id, reason, self._s.worker
        )
        trace.get_current_span().set_attribute("volume.error_reason", reason)
        log.error("%s", reason)

    async def extract_volume_spec(self, state: CreateFlowState) -> None:
        """``snap`` if the row names a snapshot, ``source_vol`` if it names a volume, else
        ``raw``; a source that is gone fails the create for good (no reschedule)."""
        volume = state.volume
        assert volume is not None
        spec = VolumeSpec(
            status=volume.status,
            type=RAW,
            volume_id=volume.id,
            volume_name=f"volume-{volume.id}",
            volume_size=volume.size,
        )
        if volume.snapshot_id:
            snapshot = await snapshot_ref(self._s.db, volume.snapshot_id)
            spec = replace(spec, type=SNAP, snapshot=snapshot)
        elif volume.source_volid:
            source, status = await source_volume_ref(self._s.db, volume.source_volid)
            spec = replace(spec, type=SOURCE_VOL, source=source, source_volstatus=status)
        trace.get_current_span().set_attributes(_source_attributes(spec))
        state.spec = spec

    async def notify_create_start(self, state: CreateFlowState) -> None:
        _notify(state, "create.start")

    async def create_volume_from_spec(self, state: CreateFlowState) -> None:
        spec = state.spec
        assert spec is not None
        log.info(
            "Volume %s: being created as %s with specification: %s",
            spec.volume_id,
            spec.type,
            spec.specification(),
        )
        driver = self._s.driver
        trace.get_current_span().set_attributes(_source_attributes(spec))
        if spec.snapshot is not None:
            await driver.create_volume_from_snapshot(
                spec.volume_id, spec.volume_size, spec.snapshot
            )
        elif spec.source is not None:
            await driver.create_cloned_volume(spec.volume_id, spec.volume_size, spec.source)
        else:
            await driver.create_volume(spec.volume_id, spec.volume_size)

    async def remove_image(self, state: CreateFlowState) -> None:
        try:
            await self._s.driver.delete_volume(state.request.volume_id)
        except Exception:
            log.exception("Volume %s: removing the image failed", state.request.volume_id)

    async def create_volume_on_finish(self, state: CreateFlowState) -> None:
        spec = state.spec
        assert spec is not None
        await store.mark_available(self._s.db, spec.volume_id, self._s.worker, self._s.service_uuid)
        _notify(state, "create.end")
        log.info("Volume %s (%s): created successfully", spec.volume_name, spec.volume_id)


def _source_attributes(spec: VolumeSpec) -> dict[str, AttributeValue]:
    """What a create is made from, for its spans."""
    attributes: dict[str, AttributeValue] = {"volume.create_type": spec.type}
    if spec.snapshot is not None:
        attributes["snapshot.id"] = spec.snapshot.id
        attributes["snapshot.volume_id"] = spec.snapshot.volume_id
    if spec.source is not None:
        attributes["source_volume.id"] = spec.source.id
    return attributes


def _notify(state: CreateFlowState, event: str) -> None:
    """Cinder's usage notification ``volume.<event>``: a log line and a span event."""
    request = state.request
    attributes: dict[str, AttributeValue] = {
        "volume.id": request.volume_id,
        "volume.size_gb": request.size_gb,
        "volume.host": request.host,
        "project.id": request.project_id,
    }
    trace.get_current_span().add_event(f"volume.{event}", attributes)
    log.info("volume.%s volume=%s host=%s", event, request.volume_id, request.host)


def create_steps(services: FlowServices) -> list[Step[CreateFlowState]]:
    s = _Steps(services)
    return [
        Step("ExtractVolumeRef", _recording(s.extract_volume_ref)),
        Step("OnFailureReschedule", _recording(s.on_failure_reschedule), s.reschedule_or_error),
        Step("ExtractVolumeSpec", _recording(s.extract_volume_spec)),
        Step("NotifyVolumeAction", _recording(s.notify_create_start)),
        Step("CreateVolumeFromSpec", _recording(s.create_volume_from_spec), s.remove_image),
        Step("CreateVolumeOnFinish", _recording(s.create_volume_on_finish)),
    ]


async def run_create(services: FlowServices, request: CreateRequest) -> CreateFlowState:
    """Runs the flow to its end; never raises for a failed create (the row records it)."""
    state = CreateFlowState(request=request)
    attributes: dict[str, AttributeValue] = {
        "volume.id": request.volume_id,
        "volume.size_gb": request.size_gb,
        "volume.host": request.host,
        "retry.num_attempts": request.retry.num_attempts,
    }
    with tracer().start_as_current_span(FLOW_NAME, attributes=attributes) as span:
        try:
            await run_flow(FLOW_NAME, create_steps(services), state)
        except Exception as error:
            span.set_status(trace.Status(trace.StatusCode.ERROR, str(error)))
            log.warning(
                "Volume %s: create failed (%s); %s",
                request.volume_id,
                error,
                "rescheduled" if state.rescheduled else "not rescheduled",
            )
            return state
    log.info("Created volume successfully. volume=%s", request.volume_id)
    return state
