"""The public VolumeService: each RPC goes through the edge to one domain operation."""

from __future__ import annotations

from urllib.parse import urlsplit

from cindermesh.errors import NotFound
from cindermesh_pb.api.v1 import volume_service_pb2 as api_pb2
from cindermesh_pb.api.v1 import volume_service_pb2_grpc as api_pb2_grpc
from services.api.edge.request_context import RequestContext
from services.api.edge.rpc import Edge, rpc
from services.api.schema import is_true
from services.api.volumes.body import (
    parse_meta,
    parse_metadata,
    parse_scheduler_hints,
    parse_update,
)
from services.api.volumes.create_flow import CreateVolumeFlow
from services.api.volumes.listing import paginate, parse_list_query
from services.api.volumes.operations import VolumeOperations
from services.api.volumes.updates import VolumeUpdates, metadata_etag_header
from services.api.volumes.views import volume_summary, volume_view

__all__ = ["VolumeServicer"]

#: webob's 404 text: Cinder's answer where no method serves the URL (or not at this version).
RESOURCE_NOT_FOUND = "The resource could not be found."


class VolumeServicer(api_pb2_grpc.VolumeServiceServicer):
    def __init__(
        self,
        edge: Edge,
        create_flow: CreateVolumeFlow,
        volumes: VolumeOperations,
        updates: VolumeUpdates,
    ) -> None:
        self._edge = edge
        self._create_flow = create_flow
        self._volumes = volumes
        self._updates = updates

    @rpc(policy="volume:create")
    async def CreateVolume(
        self, request: api_pb2.CreateVolumeRequest, ctx: RequestContext
    ) -> api_pb2.VolumeResponse:
        hints = parse_scheduler_hints(request.os_sch_hnt_scheduler_hints)
        record = await self._create_flow.run(ctx, request.volume, hints)
        return api_pb2.VolumeResponse(volume=volume_view(ctx, record, extended=False))

    @rpc(policy="volume:get")
    async def GetVolume(
        self, request: api_pb2.GetVolumeRequest, ctx: RequestContext
    ) -> api_pb2.VolumeResponse:
        record = await self._volumes.get(ctx, request.volume_id)
        return api_pb2.VolumeResponse(volume=volume_view(ctx, record, extended=True))

    @rpc(policy="volume:get_all", project_field="url_project_id")
    async def ListVolumes(
        self, request: api_pb2.ListVolumesRequest, ctx: RequestContext
    ) -> api_pb2.ListVolumeSummariesResponse:
        if urlsplit(ctx.original_path).path.endswith("/"):
            # `GET /volumes/` is a show of the empty id in Cinder: not the list.
            raise NotFound(RESOURCE_NOT_FOUND)
        page, _ = await self._volumes.list(ctx, parse_list_query(ctx, request), False)
        response = api_pb2.ListVolumeSummariesResponse(
            volumes=[volume_summary(ctx, v) for v in page.rows]
        )
        paginate(response, response.volumes_links, ctx, page, "volumes")
        return response

    @rpc(policy="volume:get_all", project_field="url_project_id")
    async def ListVolumesDetail(
        self, request: api_pb2.ListVolumesRequest, ctx: RequestContext
    ) -> api_pb2.ListVolumesResponse:
        page, records = await self._volumes.list(ctx, parse_list_query(ctx, request), True)
        response = api_pb2.ListVolumesResponse(
            volumes=[volume_view(ctx, r, extended=True) for r in records]
        )
        paginate(response, response.volumes_links, ctx, page, "volumes/detail")
        return response

    @rpc(policy="volume:get_all", project_field="url_project_id")
    async def GetVolumesSummary(
        self, request: api_pb2.ListVolumesRequest, ctx: RequestContext
    ) -> api_pb2.VolumesSummaryResponse:
        """From 3.12 (404 before, as Cinder's unversioned method); filters are ignored, as
        Cinder ignores them, but for an admin's ``all_tenants``."""
        if not ctx.version.at_least(12):
            raise NotFound(RESOURCE_NOT_FOUND)
        all_tenants = request.HasField("all_tenants") and is_true(request.all_tenants)
        count, size, metadata = await self._volumes.summary(ctx, all_tenants)
        summary = api_pb2.VolumesSummary(total_size=size, total_count=count)
        if ctx.version.at_least(36):
            summary.metadata.SetInParent()
            summary.metadata.update(metadata)
        return api_pb2.VolumesSummaryResponse(volume_summary=summary)

    @rpc(policy="volume:update")
    async def UpdateVolume(
        self, request: api_pb2.UpdateVolumeRequest, ctx: RequestContext
    ) -> api_pb2.VolumeResponse:
        change = parse_update(request.volume, request.HasField("volume"), ctx)
        record = await self._updates.update(ctx, request.volume_id, change)
        return api_pb2.VolumeResponse(volume=volume_view(ctx, record, extended=False))

    @rpc(policy="volume:get_volume_metadata", headers=metadata_etag_header)
    async def GetVolumeMetadata(
        self, request: api_pb2.VolumeMetadataRequest, ctx: RequestContext
    ) -> api_pb2.VolumeMetadataResponse:
        metadata = await self._updates.get_metadata(ctx, request.volume_id)
        return api_pb2.VolumeMetadataResponse(metadata=metadata)

    @rpc(policy="volume:create_volume_metadata")
    async def CreateVolumeMetadata(
        self, request: api_pb2.VolumeMetadataRequest, ctx: RequestContext
    ) -> api_pb2.VolumeMetadataResponse:
        return await self._set_metadata(request, ctx, replace=False)

    @rpc(policy="volume:update_volume_metadata")
    async def ReplaceVolumeMetadata(
        self, request: api_pb2.VolumeMetadataRequest, ctx: RequestContext
    ) -> api_pb2.VolumeMetadataResponse:
        return await self._set_metadata(request, ctx, replace=True)

    async def _set_metadata(
        self, request: api_pb2.VolumeMetadataRequest, ctx: RequestContext, replace: bool
    ) -> api_pb2.VolumeMetadataResponse:
        wanted = parse_metadata(request.metadata, request.HasField("metadata"))
        metadata = await self._updates.set_metadata(ctx, request.volume_id, wanted, replace)
        return api_pb2.VolumeMetadataResponse(metadata=metadata)

    @rpc(policy="volume:get_volume_metadata")
    async def GetVolumeMetadataItem(
        self, request: api_pb2.VolumeMetadataItemRequest, ctx: RequestContext
    ) -> api_pb2.VolumeMetadataItemResponse:
        key, value = await self._updates.get_item(ctx, request.volume_id, request.key)
        return api_pb2.VolumeMetadataItemResponse(meta={key: value})

    @rpc(policy="volume:update_volume_metadata")
    async def UpdateVolumeMetadataItem(
        self, request: api_pb2.VolumeMetadataItemRequest, ctx: RequestContext
    ) -> api_pb2.VolumeMetadataItemResponse:
        key, value = parse_meta(request.meta, request.HasField("meta"), request.key)
        await self._updates.set_item(ctx, request.volume_id, key, value)
        return api_pb2.VolumeMetadataItemResponse(meta={key: value})

    @rpc(policy="volume:delete_volume_metadata")
    async def DeleteVolumeMetadataItem(
        self, request: api_pb2.VolumeMetadataItemRequest, ctx: RequestContext
    ) -> api_pb2.DeleteVolumeMetadataItemResponse:
        await self._updates.delete_item(ctx, request.volume_id, request.key)
        return api_pb2.DeleteVolumeMetadataItemResponse()

    @rpc(policy="volume:delete")
    async def DeleteVolume(
        self, request: api_pb2.DeleteVolumeRequest, ctx: RequestContext
    ) -> api_pb2.DeleteVolumeResponse:
        await self._volumes.delete(ctx, request.volume_id, request.cascade, request.force)
        return api_pb2.DeleteVolumeResponse()
