"""The public QosService: each RPC goes through the edge to one QoS specs operation."""

from __future__ import annotations

from google.protobuf import struct_pb2

from cindermesh_pb.api.v1 import qos_service_pb2 as qos_pb2
from cindermesh_pb.api.v1 import qos_service_pb2_grpc as qos_pb2_grpc
from cindermesh_pb.api.v1 import volume_service_pb2 as api_pb2
from services.api.edge.request_context import RequestContext
from services.api.edge.rpc import Edge, rpc
from services.api.qos.body import validate_qos_create, validate_qos_set, validate_qos_unset
from services.api.qos.operations import QosOperations, QosRecord

__all__ = ["QosServicer", "qos_links", "qos_view"]

COLLECTION = "qos-specs"


def qos_view(record: QosRecord) -> qos_pb2.QosSpecs:
    specs = struct_pb2.Struct()
    specs.update(record.specs)
    return qos_pb2.QosSpecs(id=record.id, name=record.name, consumer=record.consumer, specs=specs)


def qos_links(ctx: RequestContext, qos_id: str) -> list[api_pb2.Link]:
    """Cinder's self and bookmark links (with the URL's project when it had one)."""
    path = (
        f"{ctx.project_id}/{COLLECTION}/{qos_id}"
        if ctx.project_in_url
        else f"{COLLECTION}/{qos_id}"
    )
    return [
        api_pb2.Link(href=f"{ctx.base_url}/v3/{path}", rel="self"),
        api_pb2.Link(href=f"{ctx.base_url}/{path}", rel="bookmark"),
    ]


def _detail(ctx: RequestContext, record: QosRecord) -> qos_pb2.QosSpecsResponse:
    return qos_pb2.QosSpecsResponse(qos_specs=qos_view(record), links=qos_links(ctx, record.id))


def _optional(request: qos_pb2.QosTypeRequest) -> str | None:
    return request.vol_type_id if request.HasField("vol_type_id") else None


class QosServicer(qos_pb2_grpc.QosServiceServicer):
    def __init__(self, edge: Edge, qos: QosOperations) -> None:
        self._edge = edge
        self._qos = qos

    @rpc(policy="volume_extension:qos_specs_manage:get_all")
    async def ListQosSpecs(
        self, request: qos_pb2.ListQosSpecsRequest, ctx: RequestContext
    ) -> qos_pb2.ListQosSpecsResponse:
        records = await self._qos.list_all()
        return qos_pb2.ListQosSpecsResponse(qos_specs=[qos_view(r) for r in records])

    @rpc(domain_policy="volume_extension:qos_specs_manage:create")
    async def CreateQosSpecs(
        self, request: qos_pb2.CreateQosSpecsRequest, ctx: RequestContext
    ) -> qos_pb2.QosSpecsResponse:
        record = await self._qos.create(ctx, validate_qos_create(request.body))
        return _detail(ctx, record)

    @rpc(policy="volume_extension:qos_specs_manage:get")
    async def GetQosSpecs(
        self, request: qos_pb2.GetQosSpecsRequest, ctx: RequestContext
    ) -> qos_pb2.QosSpecsResponse:
        return _detail(ctx, await self._qos.get(request.qos_id))

    @rpc(domain_policy="volume_extension:qos_specs_manage:update")
    async def UpdateQosSpecs(
        self, request: qos_pb2.UpdateQosSpecsRequest, ctx: RequestContext
    ) -> qos_pb2.UpdateQosSpecsResponse:
        specs = validate_qos_set(request.body)
        await self._qos.update(ctx, request.qos_id, specs)
        sent = struct_pb2.Struct()
        sent.update(specs)
        return qos_pb2.UpdateQosSpecsResponse(qos_specs=sent)

    @rpc(policy="volume_extension:qos_specs_manage:delete")
    async def DeleteQosSpecs(
        self, request: qos_pb2.DeleteQosSpecsRequest, ctx: RequestContext
    ) -> qos_pb2.QosEmptyResponse:
        force = request.force if request.HasField("force") else None
        await self._qos.delete(request.qos_id, force)
        return qos_pb2.QosEmptyResponse()

    @rpc(domain_policy="volume_extension:qos_specs_manage:delete")
    async def DeleteQosSpecsKeys(
        self, request: qos_pb2.DeleteQosSpecsKeysRequest, ctx: RequestContext
    ) -> qos_pb2.QosEmptyResponse:
        await self._qos.delete_keys(ctx, request.qos_id, validate_qos_unset(request.body))
        return qos_pb2.QosEmptyResponse()

    @rpc(policy="volume_extension:qos_specs_manage:get_all")
    async def ListQosAssociations(
        self, request: qos_pb2.GetQosSpecsRequest, ctx: RequestContext
    ) -> qos_pb2.ListQosAssociationsResponse:
        found = await self._qos.associations(request.qos_id)
        return qos_pb2.ListQosAssociationsResponse(
            qos_associations=[
                qos_pb2.QosAssociation(association_type="volume_type", name=a.name, id=a.id)
                for a in found
            ]
        )

    @rpc(policy="volume_extension:qos_specs_manage:update")
    async def AssociateQosSpecs(
        self, request: qos_pb2.QosTypeRequest, ctx: RequestContext
    ) -> qos_pb2.QosEmptyResponse:
        await self._qos.associate(request.qos_id, _optional(request))
        return qos_pb2.QosEmptyResponse()

    @rpc(policy="volume_extension:qos_specs_manage:update")
    async def DisassociateQosSpecs(
        self, request: qos_pb2.QosTypeRequest, ctx: RequestContext
    ) -> qos_pb2.QosEmptyResponse:
        await self._qos.disassociate(request.qos_id, _optional(request))
        return qos_pb2.QosEmptyResponse()

    @rpc(policy="volume_extension:qos_specs_manage:update")
    async def DisassociateAllQosSpecs(
        self, request: qos_pb2.GetQosSpecsRequest, ctx: RequestContext
    ) -> qos_pb2.QosEmptyResponse:
        await self._qos.disassociate_all(request.qos_id)
        return qos_pb2.QosEmptyResponse()
