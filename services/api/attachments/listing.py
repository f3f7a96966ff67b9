"""Listing attachments as Cinder's controller does, through the shared listing
(``services.api.volumes.listing``): the caller's project's (every project's for an admin with
``all_tenants``), filtered on ``volume_id``, ``attach_status`` and ``instance_id`` (the
attachment's ``instance_uuid``); a ``status`` filter names no column of Cinder's attachments,
so it matches nothing, as in Cinder."""

from __future__ import annotations

from cindermesh.db.models import VolumeAttachment
from cindermesh_pb.api.v1 import attachment_service_pb2 as pb
from services.api.edge.request_context import RequestContext
from services.api.schema import is_true, validate_integer
from services.api.volumes.listing import ListQuery, ListTable, parse_limit, parse_sort

__all__ = ["ATTACHMENTS", "parse_attachment_query"]

_COLUMNS = {
    "id": VolumeAttachment.id,
    "volume_id": VolumeAttachment.volume_id,
    "instance_uuid": VolumeAttachment.instance_uuid,
    "attach_status": VolumeAttachment.attach_status,
    "attached_host": VolumeAttachment.attached_host,
    "mountpoint": VolumeAttachment.mountpoint,
    "attach_mode": VolumeAttachment.attach_mode,
    "attach_time": VolumeAttachment.attach_time,
    "created_at": VolumeAttachment.created_at,
    "updated_at": VolumeAttachment.updated_at,
    "project_id": VolumeAttachment.project_id,
}
ATTACHMENTS = ListTable(
    model=VolumeAttachment,
    columns=_COLUMNS,
    metadata_owner=None,
    metadata_key=None,
    metadata_value=None,
    kind="VolumeAttachment",
)


def parse_attachment_query(ctx: RequestContext, request: pb.ListAttachmentsRequest) -> ListQuery:
    limit = parse_limit(request.limit) if request.HasField("limit") else None
    offset = validate_integer("offset", request.offset, 0) if request.HasField("offset") else 0
    filters = {
        column: getattr(request, name)
        for name, column in (
            ("volume_id", "volume_id"),
            ("attach_status", "attach_status"),
            ("instance_id", "instance_uuid"),
        )
        if request.HasField(name)
    }
    all_tenants = (
        ctx.caller.is_admin and request.HasField("all_tenants") and is_true(request.all_tenants)
    )
    if all_tenants and request.HasField("project_id"):
        filters["project_id"] = request.project_id
    return ListQuery(
        limit=limit,
        marker=request.marker if request.HasField("marker") else None,
        offset=offset,
        sort=parse_sort(request, _COLUMNS),
        all_tenants=all_tenants,
        filters=filters,
        match_nothing=request.HasField("status"),
    )
