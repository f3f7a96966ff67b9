"""The public SnapshotService: each RPC goes through the edge to one domain operation."""

from __future__ import annotations

from urllib.parse import urlsplit

from cindermesh.errors import NotFound
from cindermesh_pb.api.v1 import snapshot_service_pb2 as api_pb2
from cindermesh_pb.api.v1 import snapshot_service_pb2_grpc as api_pb2_grpc
from services.api.edge.request_context import RequestContext
from services.api.edge.rpc import Edge, rpc
from services.api.snapshots.body import (
    parse_create,
    parse_reset_status,
    parse_update,
    parse_update_status,
)
from services.api.snapshots.listing import parse_snapshot_query
from services.api.snapshots.metadata import SnapshotMetadataOperations
from services.api.snapshots.operations import SnapshotOperations
from services.api.snapshots.views import snapshot_view
from services.api.volumes.body import parse_meta, parse_metadata
from services.api.volumes.listing import paginate

__all__ = ["SnapshotServicer"]

#: webob's 404 text (``GET /snapshots/`` is a show of the empty id in Cinder).
RESOURCE_NOT_FOUND = "The resource could not be found."


class SnapshotServicer(api_pb2_grpc.SnapshotServiceServicer):
    def __init__(
        self,
        edge: Edge,
        snapshots: SnapshotOperations,
        metadata: SnapshotMetadataOperations,
    ) -> None:
        self._edge = edge
        self._snapshots = snapshots
        self._metadata = metadata

    @rpc(policy="volume:create_snapshot")
    async def CreateSnapshot(
        self, request: api_pb2.CreateSnapshotRequest, ctx: RequestContext
    ) -> api_pb2.SnapshotResponse:
        body = parse_create(request.snapshot, request.HasField("snapshot"), ctx.version)
        record = await self._snapshots.create(ctx, body)
        return api_pb2.SnapshotResponse(snapshot=snapshot_view(ctx, record, extended=False))

    @rpc(policy="volume:get_snapshot")
    async def GetSnapshot(
        self, request: api_pb2.GetSnapshotRequest, ctx: RequestContext
    ) -> api_pb2.SnapshotResponse:
        record = await self._snapshots.get(ctx, request.snapshot_id)
        return api_pb2.SnapshotResponse(snapshot=snapshot_view(ctx, record, extended=True))

    @rpc(policy="volume:get_all_snapshots", project_field="url_project_id")
    async def ListSnapshots(
        self, request: api_pb2.ListSnapshotsRequest, ctx: RequestContext
    ) -> api_pb2.ListSnapshotsResponse:
        if urlsplit(ctx.original_path).path.endswith("/"):
            raise NotFound(RESOURCE_NOT_FOUND)
        return await self._list(request, ctx, extended=False, resource="snapshots")

    @rpc(policy="volume:get_all_snapshots", project_field="url_project_id")
    async def ListSnapshotsDetail(
        self, request: api_pb2.ListSnapshotsRequest, ctx: RequestContext
    ) -> api_pb2.ListSnapshotsResponse:
        return await self._list(request, ctx, extended=True, resource="snapshots/detail")

    async def _list(
        self,
        request: api_pb2.ListSnapshotsRequest,
        ctx: RequestContext,
        extended: bool,
        resource: str,
    ) -> api_pb2.ListSnapshotsResponse:
        page, records = await self._snapshots.list(ctx, parse_snapshot_query(ctx, request))
        response = api_pb2.ListSnapshotsResponse(
            snapshots=[snapshot_view(ctx, r, extended=extended) for r in records]
        )
        paginate(response, response.snapshots_links, ctx, page, resource)
        return response

    @rpc(policy="volume:update_snapshot")
    async def UpdateSnapshot(
        self, request: api_pb2.UpdateSnapshotRequest, ctx: RequestContext
    ) -> api_pb2.SnapshotResponse:
        change = parse_update(request.snapshot, request.HasField("snapshot"))
        record = await self._snapshots.update(ctx, request.snapshot_id, change)
        return api_pb2.SnapshotResponse(snapshot=snapshot_view(ctx, record, extended=False))

    @rpc(policy="volume:delete_snapshot")
    async def DeleteSnapshot(
        self, request: api_pb2.DeleteSnapshotRequest, ctx: RequestContext
    ) -> api_pb2.DeleteSnapshotResponse:
        await self._snapshots.delete(ctx, request.snapshot_id, forced=False)
        return api_pb2.DeleteSnapshotResponse()

    @rpc(policy="volume:get_snapshot_metadata")
    async def GetSnapshotMetadata(
        self, request: api_pb2.SnapshotMetadataRequest, ctx: RequestContext
    ) -> api_pb2.SnapshotMetadataResponse:
        metadata = await self._metadata.get(ctx, request.snapshot_id)
        return api_pb2.SnapshotMetadataResponse(metadata=metadata)

    @rpc(policy="volume:update_snapshot_metadata")
    async def CreateSnapshotMetadata(
        self, request: api_pb2.SnapshotMetadataRequest, ctx: RequestContext
    ) -> api_pb2.SnapshotMetadataResponse:
        return await self._set_metadata(request, ctx, replace=False)

    @rpc(policy="volume:update_snapshot_metadata")
    async def ReplaceSnapshotMetadata(
        self, request: api_pb2.SnapshotMetadataRequest, ctx: RequestContext
    ) -> api_pb2.SnapshotMetadataResponse:
        return await self._set_metadata(request, ctx, replace=True)

    async def _set_metadata(
        self, request: api_pb2.SnapshotMetadataRequest, ctx: RequestContext, replace: bool
    ) -> api_pb2.SnapshotMetadataResponse:
        wanted = parse_metadata(request.metadata, request.HasField("metadata"))
        metadata = await self._metadata.set(ctx, request.snapshot_id, wanted, replace)
        return api_pb2.SnapshotMetadataResponse(metadata=metadata)

    @rpc(policy="volume:get_snapshot_metadata")
    async def GetSnapshotMetadataItem(
        self, request: api_pb2.SnapshotMetadataItemRequest, ctx: RequestContext
    ) -> api_pb2.SnapshotMetadataItemResponse:
        value = await self._metadata.get_item(ctx, request.snapshot_id, request.key)
        return api_pb2.SnapshotMetadataItemResponse(meta={request.key: value})

    @rpc(policy="volume:update_snapshot_metadata")
    async def UpdateSnapshotMetadataItem(
        self, request: api_pb2.SnapshotMetadataItemRequest, ctx: RequestContext
    ) -> api_pb2.SnapshotMetadataItemResponse:
        key, value = parse_meta(request.meta, request.HasField("meta"), request.key)
        await self._metadata.set(ctx, request.snapshot_id, {key: value}, replace=False)
        return api_pb2.SnapshotMetadataItemResponse(meta={key: value})

    @rpc(policy="volume:delete_snapshot_metadata")
    async def DeleteSnapshotMetadataItem(
        self, request: api_pb2.SnapshotMetadataItemRequest, ctx: RequestContext
    ) -> api_pb2.DeleteSnapshotMetadataItemResponse:
        await self._metadata.delete_item(ctx, request.snapshot_id, request.key)
        return api_pb2.DeleteSnapshotMetadataItemResponse()

    @rpc(policy="volume_extension:snapshot_admin_actions:reset_status")
    async def ResetSnapshotStatus(
        self, request: api_pb2.ResetSnapshotStatusRequest, ctx: RequestContext
    ) -> api_pb2.SnapshotActionResponse:
        status = parse_reset_status(request.os_reset_status, request.HasField("os_reset_status"))
        await self._snapshots.reset_status(ctx, request.snapshot_id, status)
        return api_pb2.SnapshotActionResponse()

    @rpc(policy="snapshot_extension:snapshot_actions:update_snapshot_status")
    async def UpdateSnapshotStatus(
        self, request: api_pb2.UpdateSnapshotStatusRequest, ctx: RequestContext
    ) -> api_pb2.SnapshotActionResponse:
        update = parse_update_status(
            request.os_update_snapshot_status, request.HasField("os_update_snapshot_status")
        )
        await self._snapshots.update_status(ctx, request.snapshot_id, update)
        return api_pb2.SnapshotActionResponse()

    @rpc(policy="volume_extension:snapshot_admin_actions:force_delete")
    async def ForceDeleteSnapshot(
        self, request: api_pb2.ForceDeleteSnapshotRequest, ctx: RequestContext
    ) -> api_pb2.SnapshotActionResponse:
        await self._snapshots.delete(ctx, request.snapshot_id, forced=True)
        return api_pb2.SnapshotActionResponse()
