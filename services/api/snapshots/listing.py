"""Listing snapshots as Cinder's ``SnapshotsController._items`` does, with the volumes' list
machinery (``services.api.volumes.listing``): filters ``name``, ``status``, ``volume_id``,
``metadata`` (3.22), ``consumes_quota`` (3.65), an admin's ``all_tenants`` and
``project_id``; sort, limit, marker, offset and ``with_count`` (3.45)."""

from __future__ import annotations

from typing import Any

from cindermesh.db.models import Snapshot, SnapshotMetadata
from cindermesh.errors import InvalidInput
from cindermesh_pb.api.v1 import snapshot_service_pb2 as api_pb2
from services.api.edge.request_context import RequestContext
from services.api.schema import is_true, strict_bool, validate_integer
from services.api.volumes.listing import (
    ListQuery,
    ListTable,
    parse_limit,
    parse_metadata_filter,
    parse_sort,
)

__all__ = ["SNAPSHOTS", "parse_snapshot_query"]

_COLUMNS: dict[str, Any] = {
    "id": Snapshot.id,
    "name": Snapshot.name,
    "display_name": Snapshot.name,
    "status": Snapshot.status,
    "volume_id": Snapshot.volume_id,
    "volume_size": Snapshot.volume_size,
    "progress": Snapshot.progress,
    "created_at": Snapshot.created_at,
    "updated_at": Snapshot.updated_at,
    "user_id": Snapshot.user_id,
    "project_id": Snapshot.project_id,
}

SNAPSHOTS = ListTable(
    model=Snapshot,
    columns=_COLUMNS,
    metadata_owner=SnapshotMetadata.snapshot_id,
    metadata_key=SnapshotMetadata.key,
    metadata_value=SnapshotMetadata.value,
    kind="Snapshot",
)


def parse_snapshot_query(ctx: RequestContext, request: api_pb2.ListSnapshotsRequest) -> ListQuery:
    """The query as Cinder reads it for the request's microversion: ``metadata`` before 3.22
    and ``consumes_quota`` before 3.65 are dropped; a non-admin's ``project_id`` is refused
    from 3.33 (resource filters) and dropped before."""
    version = ctx.version
    admin = ctx.caller.is_admin
    filters = {
        name: getattr(request, name)
        for name in ("name", "status", "volume_id")
        if request.HasField(name)
    }
    if request.HasField("project_id"):
        if admin:
            filters["project_id"] = request.project_id
        elif version.at_least(33):
            raise InvalidInput("Invalid filters project_id are found in query options.")
    metadata = None
    match_nothing = False
    if request.HasField("metadata") and version.at_least(22):
        metadata = parse_metadata_filter(request.metadata)
        match_nothing = metadata is None
    # Every cindermesh snapshot consumes quota.
    if (
        request.HasField("consumes_quota")
        and version.at_least(65)
        and not strict_bool("use_quota", request.consumes_quota)
    ):
        match_nothing = True
    offset = validate_integer("offset", request.offset, 0) if request.HasField("offset") else 0
    return ListQuery(
        limit=parse_limit(request.limit) if request.HasField("limit") else None,
        marker=request.marker if request.HasField("marker") else None,
        offset=offset,
        sort=parse_sort(request, _COLUMNS),
        with_count=(
            version.at_least(45) and request.HasField("with_count") and is_true(request.with_count)
        ),
        all_tenants=admin and request.HasField("all_tenants") and is_true(request.all_tenants),
        filters=filters,
        metadata=metadata,
        match_nothing=match_nothing,
    )
