"""Cinder's snapshot views (``cinder/api/v3/views/snapshots.py`` and the
``os-extended-snapshot-attributes`` extension), gated by microversion and policy."""

from __future__ import annotations

from dataclasses import dataclass

from cindermesh.db.models import Snapshot
from cindermesh_pb.api.v1 import snapshot_service_pb2 as api_pb2
from services.api.edge.request_context import RequestContext
from services.api.policy import allowed
from services.api.view_values import format_time, text_or_null

__all__ = ["EXTENDED_ATTRIBUTES", "SnapshotRecord", "snapshot_view"]

#: The policy that shows the ``os-extended-snapshot-attributes:*`` fields.
EXTENDED_ATTRIBUTES = "volume_extension:extended_snapshot_attributes"


@dataclass(frozen=True)
class SnapshotRecord:
    """A snapshot row with its metadata."""

    snapshot: Snapshot
    metadata: dict[str, str]


def snapshot_view(ctx: RequestContext, record: SnapshotRecord, extended: bool) -> api_pb2.Snapshot:
    """The view of one snapshot (Cinder's summary and detail are the same). ``extended``: show
    and the detail list add the extension's ``project_id`` and ``progress`` where the policy
    allows them."""
    snapshot = record.snapshot
    view = api_pb2.Snapshot(
        id=snapshot.id,
        created_at=format_time(snapshot.created_at),
        updated_at=text_or_null(format_time(snapshot.updated_at) if snapshot.updated_at else None),
        name=text_or_null(snapshot.name),
        description=text_or_null(snapshot.description),
        volume_id=snapshot.volume_id,
        status=snapshot.status,
        size=snapshot.volume_size,
        metadata=record.metadata,
    )
    if ctx.version.at_least(14):
        view.group_snapshot_id.CopyFrom(text_or_null(snapshot.group_snapshot_id))
    if ctx.version.at_least(41):
        view.user_id = snapshot.user_id
    if ctx.version.at_least(65):
        view.consumes_quota = True
    if extended and allowed(ctx, EXTENDED_ATTRIBUTES):
        view.os_extended_snapshot_attributes_project_id = snapshot.project_id
        view.os_extended_snapshot_attributes_progress = snapshot.progress
    return view
