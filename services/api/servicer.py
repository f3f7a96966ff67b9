"""The public VolumeService: each RPC goes through the edge to one domain operation."""

from __future__ import annotations

from google.protobuf import struct_pb2

from cindermesh_pb.api.v1 import volume_service_pb2 as api_pb2
from cindermesh_pb.api.v1 import volume_service_pb2_grpc as api_pb2_grpc
from services.api.create_flow import CreateVolumeFlow
from services.api.edge import Context, Edge
from services.api.request_context import RequestContext
from services.api.views import volume_summary, volume_view
from services.api.volume_list import ListPage, next_link, parse_list_query
from services.api.volumes import VolumeOperations

__all__ = ["VolumeServicer"]


class VolumeServicer(api_pb2_grpc.VolumeServiceServicer):
    def __init__(self, edge: Edge, create_flow: CreateVolumeFlow, volumes: VolumeOperations):
        self._edge = edge
        self._create_flow = create_flow
        self._volumes = volumes

    async def CreateVolume(
        self, request: api_pb2.CreateVolumeRequest, context: Context
    ) -> api_pb2.VolumeResponse:
        async def work(ctx: RequestContext) -> api_pb2.VolumeResponse:
            record = await self._create_flow.run(ctx, request.volume)
            return api_pb2.VolumeResponse(volume=volume_view(ctx, record, extended=False))

        return await self._edge.handle(context, request.project_id, work, http_status=202)

    async def GetVolume(
        self, request: api_pb2.GetVolumeRequest, context: Context
    ) -> api_pb2.VolumeResponse:
        async def work(ctx: RequestContext) -> api_pb2.VolumeResponse:
            record = await self._volumes.get(ctx, request.volume_id)
            return api_pb2.VolumeResponse(volume=volume_view(ctx, record, extended=True))

        return await self._edge.handle(context, request.project_id, work)

    async def ListVolumes(
        self, request: api_pb2.ListVolumesRequest, context: Context
    ) -> api_pb2.ListVolumeSummariesResponse:
        async def work(ctx: RequestContext) -> api_pb2.ListVolumeSummariesResponse:
            page, _ = await self._volumes.list(ctx, parse_list_query(ctx, request), False)
            response = api_pb2.ListVolumeSummariesResponse(
                volumes=[volume_summary(ctx, v) for v in page.volumes]
            )
            _paginate(response, ctx, page, "volumes")
            return response

        return await self._edge.handle(context, request.project_id, work)

    async def ListVolumesDetail(
        self, request: api_pb2.ListVolumesRequest, context: Context
    ) -> api_pb2.ListVolumesResponse:
        async def work(ctx: RequestContext) -> api_pb2.ListVolumesResponse:
            page, records = await self._volumes.list(ctx, parse_list_query(ctx, request), True)
            response = api_pb2.ListVolumesResponse(
                volumes=[volume_view(ctx, r, extended=True) for r in records]
            )
            _paginate(response, ctx, page, "volumes/detail")
            return response

        return await self._edge.handle(context, request.project_id, work)

    async def DeleteVolume(
        self, request: api_pb2.DeleteVolumeRequest, context: Context
    ) -> api_pb2.DeleteVolumeResponse:
        async def work(ctx: RequestContext) -> api_pb2.DeleteVolumeResponse:
            await self._volumes.delete(ctx, request.volume_id, request.cascade, request.force)
            return api_pb2.DeleteVolumeResponse()

        return await self._edge.handle(
            context, request.project_id, work, http_status=202, no_body=True
        )


def _paginate(
    response: api_pb2.ListVolumesResponse | api_pb2.ListVolumeSummariesResponse,
    ctx: RequestContext,
    page: ListPage,
    resource: str,
) -> None:
    if page.count is not None:
        response.count = page.count
    for link in next_link(ctx, page, ctx.original_path, resource) or ():
        entry = struct_pb2.Struct()
        entry.update(link)
        response.volumes_links.values.add().struct_value.CopyFrom(entry)
