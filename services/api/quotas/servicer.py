"""The public QuotaService: quota sets, quota classes and limits, each RPC through the edge to
QuotaSets."""

from __future__ import annotations

from collections.abc import Mapping

from google.protobuf import struct_pb2

from cindermesh_pb.api.v1 import quota_service_pb2 as quota_pb2
from cindermesh_pb.api.v1 import quota_service_pb2_grpc as quota_pb2_grpc
from services.api.edge.request_context import RequestContext
from services.api.edge.rpc import Edge, rpc
from services.api.quotas.quota_sets import QuotaEntry, QuotaSets
from services.api.schema import to_python

__all__ = ["QuotaServicer", "quota_set_struct"]


def quota_set_struct(
    limits: Mapping[str, int | QuotaEntry], project_id: str | None
) -> struct_pb2.Struct:
    """Cinder's ``quota_set``: ``id`` (unless None) and, per resource, its limit or
    ``{limit, in_use, reserved}``."""
    struct = struct_pb2.Struct()
    if project_id is not None:
        struct["id"] = project_id
    for name, value in limits.items():
        if isinstance(value, QuotaEntry):
            struct.get_or_create_struct(name).update(
                {"limit": value.limit, "in_use": value.in_use, "reserved": value.reserved}
            )
        else:
            struct[name] = value
    return struct


class QuotaServicer(quota_pb2_grpc.QuotaServiceServicer):
    def __init__(self, edge: Edge, quota_sets: QuotaSets) -> None:
        self._edge = edge
        self._quota_sets = quota_sets

    @rpc(policy="volume_extension:quotas:show")
    async def GetQuotaSet(
        self, request: quota_pb2.GetQuotaSetRequest, ctx: RequestContext
    ) -> quota_pb2.QuotaSetResponse:
        usage = request.usage if request.HasField("usage") else None
        target = request.target_project_id
        shown = await self._quota_sets.show(ctx, target, usage)
        limits: Mapping[str, int | QuotaEntry] = (
            shown.entries
            if shown.with_usage
            else {name: entry.limit for name, entry in shown.entries.items()}
        )
        return quota_pb2.QuotaSetResponse(quota_set=quota_set_struct(limits, target))

    @rpc(policy="volume_extension:quotas:show")
    async def GetQuotaSetDefaults(
        self, request: quota_pb2.GetQuotaSetDefaultsRequest, ctx: RequestContext
    ) -> quota_pb2.QuotaSetResponse:
        target = request.target_project_id
        defaults = await self._quota_sets.defaults(ctx, target)
        return quota_pb2.QuotaSetResponse(quota_set=quota_set_struct(defaults, target))

    @rpc(domain_policy="volume_extension:quotas:update")
    async def UpdateQuotaSet(
        self, request: quota_pb2.UpdateQuotaSetRequest, ctx: RequestContext
    ) -> quota_pb2.QuotaSetResponse:
        present = request.HasField("quota_set")
        body = to_python(request.quota_set) if present else None
        limits = await self._quota_sets.update(ctx, request.target_project_id, body, present)
        return quota_pb2.QuotaSetResponse(quota_set=quota_set_struct(limits, None))

    @rpc(policy="volume_extension:quotas:delete")
    async def DeleteQuotaSet(
        self, request: quota_pb2.DeleteQuotaSetRequest, ctx: RequestContext
    ) -> quota_pb2.DeleteQuotaSetResponse:
        await self._quota_sets.delete(ctx, request.target_project_id)
        return quota_pb2.DeleteQuotaSetResponse()

    @rpc(policy="volume_extension:quota_classes:get")
    async def GetQuotaClassSet(
        self, request: quota_pb2.GetQuotaClassSetRequest, ctx: RequestContext
    ) -> quota_pb2.QuotaClassSetResponse:
        limits = await self._quota_sets.class_limits(request.class_name)
        struct = quota_set_struct(limits, request.class_name)
        return quota_pb2.QuotaClassSetResponse(quota_class_set=struct)

    @rpc(domain_policy="volume_extension:quota_classes:update")
    async def UpdateQuotaClassSet(
        self, request: quota_pb2.UpdateQuotaClassSetRequest, ctx: RequestContext
    ) -> quota_pb2.QuotaClassSetResponse:
        present = request.HasField("quota_class_set")
        body = to_python(request.quota_class_set) if present else None
        limits = await self._quota_sets.update_class(ctx, request.class_name, body, present)
        return quota_pb2.QuotaClassSetResponse(quota_class_set=quota_set_struct(limits, None))

    @rpc(project_field="url_project_id")
    async def GetLimits(
        self, request: quota_pb2.GetLimitsRequest, ctx: RequestContext
    ) -> quota_pb2.LimitsResponse:
        found = await self._quota_sets.limits(
            ctx,
            request.project_id if request.HasField("project_id") else None,
            request.tenant_id if request.HasField("tenant_id") else None,
        )
        absolute = quota_pb2.AbsoluteLimits(
            maxTotalVolumeGigabytes=found.max_total_volume_gigabytes,
            maxTotalBackupGigabytes=found.max_total_backup_gigabytes,
            maxTotalVolumes=found.max_total_volumes,
            maxTotalSnapshots=found.max_total_snapshots,
            maxTotalBackups=found.max_total_backups,
            totalVolumesUsed=found.total_volumes_used,
            totalGigabytesUsed=found.total_gigabytes_used,
            totalSnapshotsUsed=found.total_snapshots_used,
            totalBackupsUsed=found.total_backups_used,
            totalBackupGigabytesUsed=found.total_backup_gigabytes_used,
        )
        return quota_pb2.LimitsResponse(limits=quota_pb2.Limits(absolute=absolute))
