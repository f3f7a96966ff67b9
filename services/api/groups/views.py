"""Cinder's group type, group and group snapshot views (``cinder/api/v3/views/``), gated by
microversion and policy."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from google.protobuf import struct_pb2

from cindermesh.db.models import Group, GroupSnapshot, GroupType
from cindermesh_pb.api.v1 import group_service_pb2 as pb
from services.api.edge.request_context import RequestContext
from services.api.policy import allowed
from services.api.view_values import format_time, text_or_null

__all__ = [
    "GroupRecord",
    "group_snapshot_detail",
    "group_snapshot_summary",
    "group_summary",
    "group_type_view",
    "group_view",
]


def group_type_view(
    ctx: RequestContext, group_type: GroupType, specs: dict[str, str | None]
) -> pb.GroupType:
    view = pb.GroupType(
        id=group_type.id,
        name=group_type.name,
        description=text_or_null(group_type.description),
        is_public=group_type.is_public,
    )
    if allowed(ctx, "group:access_group_types_specs"):
        view.group_specs.SetInParent()
        view.group_specs.update({k: v if v is not None else "" for k, v in specs.items()})
    return view


@dataclass(frozen=True)
class GroupRecord:
    """A group with what its view needs from other tables."""

    group: Group
    volume_type_ids: Sequence[str]
    #: Its volumes' ids, when the view lists them (3.25 ``list_volume``).
    volume_ids: Sequence[str] | None = None


def group_summary(group: Group) -> pb.GroupSummary:
    return pb.GroupSummary(id=group.id, name=text_or_null(group.name))


def group_view(ctx: RequestContext, record: GroupRecord) -> pb.Group:
    group = record.group
    view = pb.Group(
        id=group.id,
        name=text_or_null(group.name),
        status=group.status,
        availability_zone=group.availability_zone,
        created_at=format_time(group.created_at),
        description=text_or_null(group.description),
        group_type=group.group_type_id,
        volume_types=list(record.volume_type_ids),
    )
    if ctx.version.at_least(14):
        view.group_snapshot_id.CopyFrom(text_or_null(group.group_snapshot_id))
        view.source_group_id.CopyFrom(text_or_null(group.source_group_id))
    if ctx.version.at_least(25) and record.volume_ids is not None:
        view.volumes.SetInParent()
        view.volumes.extend(list(record.volume_ids))
    if ctx.version.at_least(38):
        view.replication_status.CopyFrom(struct_pb2.Value(string_value="disabled"))
    if ctx.version.at_least(58) and allowed(ctx, "group:group_project_attribute"):
        view.project_id = group.project_id
    return view


def group_snapshot_summary(snapshot: GroupSnapshot, with_type: bool) -> pb.GroupSnapshot:
    """The summary; ``with_type``: a create's answer (Cinder's list drops group_type_id)."""
    view = pb.GroupSnapshot(id=snapshot.id, name=text_or_null(snapshot.name))
    if with_type:
        view.group_type_id = snapshot.group_type_id
    return view


def group_snapshot_detail(
    ctx: RequestContext, snapshot: GroupSnapshot, status: str
) -> pb.GroupSnapshot:
    """The detail, with the status the group snapshot shows."""
    view = group_snapshot_summary(snapshot, with_type=True)
    view.group_id = snapshot.group_id
    view.status = status
    view.created_at = format_time(snapshot.created_at)
    view.description.CopyFrom(text_or_null(snapshot.description))
    if ctx.version.at_least(58) and allowed(ctx, "group:group_snapshot_project_attribute"):
        view.project_id = snapshot.project_id
    return view
