"""The public InfoService: availability zones, services and the scheduler's pools."""

from __future__ import annotations

from cindermesh_pb.api.v1 import info_service_pb2 as info_pb2
from cindermesh_pb.api.v1 import info_service_pb2_grpc as info_pb2_grpc
from services.api.edge.request_context import RequestContext
from services.api.edge.rpc import Edge, rpc
from services.api.info.operations import InfoOperations, service_view

__all__ = ["InfoServicer"]


class InfoServicer(info_pb2_grpc.InfoServiceServicer):
    def __init__(self, edge: Edge, info: InfoOperations) -> None:
        self._edge = edge
        self._info = info

    @rpc()
    async def ListAvailabilityZones(
        self, request: info_pb2.ListAvailabilityZonesRequest, ctx: RequestContext
    ) -> info_pb2.ListAvailabilityZonesResponse:
        zones = await self._info.availability_zones()
        return info_pb2.ListAvailabilityZonesResponse(
            availabilityZoneInfo=[
                info_pb2.AvailabilityZone(
                    zoneName=name, zoneState=info_pb2.ZoneState(available=available)
                )
                for name, available in zones
            ]
        )

    @rpc(policy="volume_extension:services:index")
    async def ListServices(
        self, request: info_pb2.ListServicesRequest, ctx: RequestContext
    ) -> info_pb2.ListServicesResponse:
        entries = await self._info.services(
            ctx,
            host=request.host if request.HasField("host") else None,
            binary=request.binary if request.HasField("binary") else None,
        )
        return info_pb2.ListServicesResponse(services=[service_view(ctx, e) for e in entries])

    @rpc(policy="scheduler_extension:scheduler_stats:get_pools")
    async def GetPools(
        self, request: info_pb2.GetPoolsRequest, ctx: RequestContext
    ) -> info_pb2.GetPoolsResponse:
        pools = await self._info.pools(
            ctx, request.detail, name=request.name if request.HasField("name") else None
        )
        response = info_pb2.GetPoolsResponse()
        for pool in pools:
            entry = response.pools.add(name=pool.name)
            if pool.HasField("capabilities"):
                entry.capabilities.CopyFrom(pool.capabilities)
        return response
