"""The public TypeService: each RPC goes through the edge to one volume-type operation."""

from __future__ import annotations

from cindermesh_pb.api.v1 import type_service_pb2 as types_pb2
from cindermesh_pb.api.v1 import type_service_pb2_grpc as types_pb2_grpc
from services.api.edge.request_context import RequestContext
from services.api.edge.rpc import Edge, rpc
from services.api.types.body import validate_type_create
from services.api.types.operations import VolumeTypeOperations, type_view

__all__ = ["TypeServicer"]


class TypeServicer(types_pb2_grpc.TypeServiceServicer):
    def __init__(self, edge: Edge, types: VolumeTypeOperations) -> None:
        self._edge = edge
        self._types = types

    @rpc()
    async def ListTypes(
        self, request: types_pb2.ListTypesRequest, ctx: RequestContext
    ) -> types_pb2.ListTypesResponse:
        is_public = request.is_public if request.HasField("is_public") else None
        records = await self._types.list(ctx, is_public)
        return types_pb2.ListTypesResponse(
            volume_types=[type_view(ctx, r, access_field=True) for r in records]
        )

    @rpc()
    async def GetDefaultType(
        self, request: types_pb2.GetDefaultTypeRequest, ctx: RequestContext
    ) -> types_pb2.TypeResponse:
        record = await self._types.get_default(ctx)
        return types_pb2.TypeResponse(volume_type=type_view(ctx, record, access_field=False))

    @rpc()
    async def GetType(
        self, request: types_pb2.GetTypeRequest, ctx: RequestContext
    ) -> types_pb2.TypeResponse:
        record = await self._types.get(ctx, request.type_id)
        return types_pb2.TypeResponse(volume_type=type_view(ctx, record, access_field=True))

    @rpc()
    async def CreateType(
        self, request: types_pb2.CreateTypeRequest, ctx: RequestContext
    ) -> types_pb2.TypeResponse:
        # Cinder validates the body before it checks the policy.
        record = await self._types.create(ctx, validate_type_create(request.body))
        return types_pb2.TypeResponse(volume_type=type_view(ctx, record, access_field=True))

    @rpc()
    async def DeleteType(
        self, request: types_pb2.DeleteTypeRequest, ctx: RequestContext
    ) -> types_pb2.DeleteTypeResponse:
        await self._types.delete(ctx, request.type_id)
        return types_pb2.DeleteTypeResponse()
