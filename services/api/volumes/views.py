"""Cinder's volume views: database rows to the public messages, gated by microversion and role."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from cindermesh.db.models import AttachStatus, Volume, VolumeAttachment
from cindermesh_pb.api.v1 import volume_service_pb2 as api_pb2
from services.api.edge.request_context import RequestContext
from services.api.policy import allowed
from services.api.view_values import NULL, format_time, text_or_null

__all__ = ["VolumeRecord", "attachments_view", "volume_links", "volume_summary", "volume_view"]


@dataclass(frozen=True)
class VolumeRecord:
    """A volume row with what its view needs from other tables."""

    volume: Volume
    metadata: dict[str, str]
    type_name: str
    attachments: Sequence[VolumeAttachment] = field(default_factory=tuple)


def volume_links(ctx: RequestContext, project_id: str, volume_id: str) -> list[api_pb2.Link]:
    path = f"{project_id}/volumes/{volume_id}" if ctx.project_in_url else f"volumes/{volume_id}"
    return [
        api_pb2.Link(href=f"{ctx.base_url}/v3/{path}", rel="self"),
        api_pb2.Link(href=f"{ctx.base_url}/{path}", rel="bookmark"),
    ]


def volume_summary(ctx: RequestContext, volume: Volume) -> api_pb2.VolumeSummary:
    return api_pb2.VolumeSummary(
        id=volume.id,
        name=text_or_null(volume.name),
        links=volume_links(ctx, volume.project_id, volume.id),
    )


def attachments_view(
    ctx: RequestContext, attachments: Sequence[VolumeAttachment]
) -> list[api_pb2.Attachment]:
    """Cinder's ``_get_attachments``: the ``attached`` ones; the host for admins and service
    users only."""
    sees_host = ctx.caller.is_admin or "service" in ctx.caller.roles
    return [
        api_pb2.Attachment(
            id=a.volume_id,
            attachment_id=a.id,
            volume_id=a.volume_id,
            server_id=text_or_null(a.instance_uuid),
            host_name=text_or_null(a.attached_host) if sees_host else NULL,
            device=text_or_null(a.mountpoint),
            attached_at=text_or_null(format_time(a.attach_time) if a.attach_time else None),
        )
        for a in attachments
        if a.attach_status == AttachStatus.ATTACHED
    ]


def volume_view(ctx: RequestContext, record: VolumeRecord, extended: bool) -> api_pb2.Volume:
    """The detail view. ``extended``: show and detail list add Cinder's ``os-vol-*`` fields."""
    volume = record.volume
    admin = ctx.caller.is_admin
    view = api_pb2.Volume(
        id=volume.id,
        name=text_or_null(volume.name),
        description=text_or_null(volume.description),
        status=volume.status,
        size=volume.size,
        availability_zone=volume.availability_zone,
        created_at=format_time(volume.created_at),
        updated_at=text_or_null(format_time(volume.updated_at) if volume.updated_at else None),
        volume_type=record.type_name,
        snapshot_id=text_or_null(volume.snapshot_id),
        source_volid=text_or_null(volume.source_volid),
        metadata=record.metadata,
        links=volume_links(ctx, volume.project_id, volume.id),
        user_id=volume.user_id,
        bootable="true" if volume.bootable else "false",
        encrypted=False,
        replication_status=NULL,
        consistencygroup_id=NULL,
        multiattach=volume.multiattach,
        attachments=attachments_view(ctx, record.attachments),
    )
    if admin:
        view.migration_status.CopyFrom(text_or_null(volume.migration_status))
    if ctx.version.at_least(13):
        view.group_id.CopyFrom(text_or_null(volume.group_id))
    if ctx.version.at_least(21) and admin:
        view.provider_id.CopyFrom(NULL)
    if ctx.version.at_least(48):
        view.service_uuid.CopyFrom(text_or_null(volume.service_uuid))
        # Cinder's column defaults to true until a backend sets it; ours never share targets.
        view.shared_targets = volume.service_uuid is None
    if ctx.version.at_least(61) and admin:
        view.cluster_name.CopyFrom(NULL)
    if ctx.version.at_least(63):
        view.volume_type_id = volume.volume_type_id
    if ctx.version.at_least(65):
        view.consumes_quota = True
    if extended:
        # Cinder's view extensions, each behind its policy (checked for the caller's project).
        if allowed(ctx, "volume_extension:volume_tenant_attribute"):
            view.os_vol_tenant_attr_tenant_id.CopyFrom(text_or_null(volume.project_id))
        if allowed(ctx, "volume_extension:volume_host_attribute"):
            view.os_vol_host_attr_host.CopyFrom(text_or_null(volume.host))
        if allowed(ctx, "volume_extension:volume_mig_status_attribute"):
            view.os_vol_mig_status_attr_migstat.CopyFrom(text_or_null(volume.migration_status))
            view.os_vol_mig_status_attr_name_id.CopyFrom(NULL)
    return view
