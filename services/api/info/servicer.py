"""The public InfoService: availability zones, extensions, services and their actions, hosts,
backend capabilities and the scheduler's pools."""

from __future__ import annotations

from cindermesh_pb.api.v1 import info_service_pb2 as info_pb2
from cindermesh_pb.api.v1 import info_service_pb2_grpc as info_pb2_grpc
from services.api.edge.request_context import RequestContext
from services.api.edge.rpc import Edge, rpc
from services.api.info.admin import AdminOperations, service_update_view
from services.api.info.extensions import extensions_view
from services.api.info.operations import InfoOperations, service_view
from services.api.policy import authorize
from services.api.schema import invalid_input

__all__ = ["InfoServicer"]


class InfoServicer(info_pb2_grpc.InfoServiceServicer):
    def __init__(self, edge: Edge, info: InfoOperations, admin: AdminOperations) -> None:
        self._edge = edge
        self._info = info
        self._admin = admin

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

    @rpc()
    async def ListExtensions(
        self, request: info_pb2.ListExtensionsRequest, ctx: RequestContext
    ) -> info_pb2.ListExtensionsResponse:
        return extensions_view()

    @rpc(policy="volume_extension:services:update")
    async def EnableService(
        self, request: info_pb2.ServiceActionRequest, ctx: RequestContext
    ) -> info_pb2.ServiceUpdateResponse:
        return service_update_view(await self._admin.set_enabled(request.body, disabled=False))

    @rpc(policy="volume_extension:services:update")
    async def DisableService(
        self, request: info_pb2.ServiceActionRequest, ctx: RequestContext
    ) -> info_pb2.ServiceUpdateResponse:
        return service_update_view(await self._admin.set_enabled(request.body, disabled=True))

    @rpc(policy="volume_extension:services:update")
    async def DisableLogReason(
        self, request: info_pb2.ServiceActionRequest, ctx: RequestContext
    ) -> info_pb2.ServiceUpdateResponse:
        update = await self._admin.set_enabled(request.body, disabled=True, with_reason=True)
        return service_update_view(update)

    @rpc(policy="volume_extension:services:update")
    async def FreezeHost(
        self, request: info_pb2.ServiceActionRequest, ctx: RequestContext
    ) -> info_pb2.ServiceActionResponse:
        # Cinder's volume API checks it too (before its look-up of the services).
        authorize(ctx, "volume:freeze_host")
        await self._admin.freeze(ctx, request.body, frozen=True)
        return info_pb2.ServiceActionResponse()

    @rpc(policy="volume_extension:services:update")
    async def ThawHost(
        self, request: info_pb2.ServiceActionRequest, ctx: RequestContext
    ) -> info_pb2.ServiceActionResponse:
        # Cinder's volume API checks it too (before its look-up of the services).
        authorize(ctx, "volume:thaw_host")
        await self._admin.freeze(ctx, request.body, frozen=False)
        return info_pb2.ServiceActionResponse()

    @rpc(policy="volume_extension:services:update")
    async def FailoverHost(
        self, request: info_pb2.ServiceActionRequest, ctx: RequestContext
    ) -> info_pb2.ServiceActionResponse:
        # Cinder's volume API checks it too (before its look-up of the services).
        authorize(ctx, "volume:failover_host")
        await self._admin.failover(ctx, request.body)
        return info_pb2.ServiceActionResponse()

    @rpc(policy="volume_extension:services:update")
    async def UpdateService(
        self, request: info_pb2.UpdateServiceRequest, ctx: RequestContext
    ) -> info_pb2.ServiceActionResponse:
        raise invalid_input("Unknown action")

    @rpc(policy="volume_extension:hosts")
    async def ListHosts(
        self, request: info_pb2.ListHostsRequest, ctx: RequestContext
    ) -> info_pb2.ListHostsResponse:
        zone = request.zone if request.HasField("zone") else None
        return info_pb2.ListHostsResponse(hosts=await self._admin.hosts(zone))

    @rpc(policy="volume_extension:hosts")
    async def ShowHost(
        self, request: info_pb2.ShowHostRequest, ctx: RequestContext
    ) -> info_pb2.ShowHostResponse:
        resources = await self._admin.host_usage(request.host)
        return info_pb2.ShowHostResponse(
            host=[info_pb2.HostResourceEntry(resource=r) for r in resources]
        )

    @rpc(policy="volume_extension:capabilities")
    async def GetCapabilities(
        self, request: info_pb2.GetCapabilitiesRequest, ctx: RequestContext
    ) -> info_pb2.Capabilities:
        return await self._admin.capabilities(request.host)
