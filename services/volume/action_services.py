"""What the manager's action flows (extend, revert) call, built once per process, and how
each of them runs."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

from opentelemetry import trace

from cindermesh.db.engine import Database
from cindermesh.flow import Step, run_flow
from cindermesh.telemetry.tracing import tracer
from services.volume.drivers.base import BlockStorageDriver

__all__ = ["ActionServices", "run_action_flow"]

C = TypeVar("C")

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ActionServices:
    db: Database
    #: The backend's whole driver (extend and revert are beyond the create flow's interface).
    driver: BlockStorageDriver
    #: This process's instance id: the ``worker`` of the volumes it holds.
    worker: str


async def run_action_flow(name: str, volume_id: str, steps: Sequence[Step[C]], state: C) -> None:
    """Runs an action's flow in its span (``name``, the volume's id) to its end; never raises
    for a failed action (its undo recorded it on the row)."""
    with tracer().start_as_current_span(name, attributes={"volume.id": volume_id}) as span:
        try:
            await run_flow(name, steps, state)
        except Exception as error:
            span.set_status(trace.Status(trace.StatusCode.ERROR, str(error)))
            log.warning("Volume %s: %s failed (%s)", volume_id, name, error)
