"""Deleting a volume (Cinder's ``VolumeManager.delete_volume``).

The driver removes the image (already gone counts as done); then one transaction deletes the
metadata and the row and gives the quota back if the volume still held it. If the driver fails
the volume goes to ``error_deleting`` and keeps its row and quota. Each write happens only while
``worker`` still holds the volume (``services.volume.store``).
"""

from __future__ import annotations

import logging

from opentelemetry import trace

from cindermesh.db.engine import Database
from cindermesh.db.models import VolumeStatus
from cindermesh.telemetry.tracing import tracer
from services.volume import store
from services.volume.drivers.base import VolumeDriver

__all__ = ["run_delete"]

log = logging.getLogger(__name__)


async def run_delete(db: Database, driver: VolumeDriver, volume_id: str, worker: str) -> bool:
    """False if the driver failed (the volume is then ``error_deleting``), True otherwise: a
    volume already gone, or no longer this worker's to delete, needs nothing more from it.
    Never raises for a failed delete."""
    with tracer().start_as_current_span(
        "volume.delete_volume", attributes={"volume.id": volume_id}
    ) as span:
        _notify(volume_id, "delete.start")
        try:
            await driver.delete_volume(volume_id)
        except Exception as error:
            span.set_status(trace.Status(trace.StatusCode.ERROR, str(error)))
            log.error("Volume %s: delete failed in the driver: %s", volume_id, error)
            await store.set_status(
                db, volume_id, VolumeStatus.DELETING, VolumeStatus.ERROR_DELETING, worker
            )
            return False
        destroyed = await store.destroy_volume(db, volume_id, worker)
        span.set_attribute("volume.row_destroyed", destroyed)
        _notify(volume_id, "delete.end")
    log.info("Deleted volume successfully. volume=%s", volume_id)
    return True


def _notify(volume_id: str, event: str) -> None:
    trace.get_current_span().add_event(f"volume.{event}", {"volume.id": volume_id})
    log.info("volume.%s volume=%s", event, volume_id)
