"""The public TransferService: each RPC goes through the edge to one transfer operation."""

from __future__ import annotations

from google.protobuf import struct_pb2

from cindermesh.db.models import Transfer
from cindermesh_pb.api.v1 import transfer_service_pb2 as pb
from cindermesh_pb.api.v1 import transfer_service_pb2_grpc as pb_grpc
from services.api.edge.request_context import RequestContext
from services.api.edge.rpc import Edge, rpc
from services.api.transfers.body import validate_accept, validate_create
from services.api.transfers.listing import parse_transfer_query
from services.api.transfers.operations import TransferOperations
from services.api.transfers.views import (
    COLLECTION,
    transfer_detail,
    transfer_summary,
)
from services.api.volumes.listing import ListPage, next_link

__all__ = ["TransferServicer"]

#: The v3 controller's microversions: 3.55's create schema, 3.59's pagination.
WITH_SNAPSHOTS = 55
PAGINATED = 59


class TransferServicer(pb_grpc.TransferServiceServicer):
    def __init__(self, edge: Edge, transfers: TransferOperations) -> None:
        self._edge = edge
        self._transfers = transfers

    @rpc(domain_policy="volume:create_transfer")
    async def CreateTransfer(
        self, request: pb.CreateTransferRequest, ctx: RequestContext
    ) -> pb.TransferResponse:
        return await self._create(request, ctx, ctx.version.at_least(WITH_SNAPSHOTS))

    @rpc(domain_policy="volume:create_transfer")
    async def CreateLegacyTransfer(
        self, request: pb.CreateTransferRequest, ctx: RequestContext
    ) -> pb.TransferResponse:
        return await self._create(request, ctx, with_snapshots_field=False)

    async def _create(
        self, request: pb.CreateTransferRequest, ctx: RequestContext, with_snapshots_field: bool
    ) -> pb.TransferResponse:
        given = validate_create(request.body, with_snapshots_field)
        created = await self._transfers.create(ctx, given)
        view = transfer_detail(ctx, created.transfer, auth_key=created.auth_key)
        return pb.TransferResponse(transfer=view)

    @rpc(policy="volume:get_all_transfers")
    async def ListTransfers(
        self, request: pb.ListTransfersRequest, ctx: RequestContext
    ) -> pb.ListTransfersResponse:
        return await self._list(request, ctx, ctx.version.at_least(PAGINATED), detail=False)

    @rpc(policy="volume:get_all_transfers")
    async def ListTransfersDetail(
        self, request: pb.ListTransfersRequest, ctx: RequestContext
    ) -> pb.ListTransfersResponse:
        return await self._list(request, ctx, ctx.version.at_least(PAGINATED), detail=True)

    @rpc(policy="volume:get_all_transfers")
    async def ListLegacyTransfers(
        self, request: pb.ListTransfersRequest, ctx: RequestContext
    ) -> pb.ListTransfersResponse:
        return await self._list(request, ctx, paginated=False, detail=False)

    @rpc(policy="volume:get_all_transfers")
    async def ListLegacyTransfersDetail(
        self, request: pb.ListTransfersRequest, ctx: RequestContext
    ) -> pb.ListTransfersResponse:
        return await self._list(request, ctx, paginated=False, detail=True)

    async def _list(
        self,
        request: pb.ListTransfersRequest,
        ctx: RequestContext,
        paginated: bool,
        detail: bool,
    ) -> pb.ListTransfersResponse:
        page = await self._transfers.list(ctx, parse_transfer_query(ctx, request, paginated))
        view = transfer_detail if detail else transfer_summary
        response = pb.ListTransfersResponse(transfers=[view(ctx, t) for t in page.rows])
        _paginate(response, ctx, page)
        return response

    @rpc(policy="volume:get_transfer")
    async def GetTransfer(
        self, request: pb.TransferRequest, ctx: RequestContext
    ) -> pb.TransferResponse:
        transfer = await self._transfers.get(ctx, request.transfer_id)
        return pb.TransferResponse(transfer=transfer_detail(ctx, transfer))

    @rpc(domain_policy="volume:accept_transfer")
    async def AcceptTransfer(
        self, request: pb.AcceptTransferRequest, ctx: RequestContext
    ) -> pb.TransferResponse:
        auth_key = validate_accept(request.body)
        transfer = await self._transfers.accept(ctx, request.transfer_id, auth_key)
        return pb.TransferResponse(transfer=transfer_summary(ctx, transfer))

    @rpc(domain_policy="volume:delete_transfer")
    async def DeleteTransfer(
        self, request: pb.TransferRequest, ctx: RequestContext
    ) -> pb.DeleteTransferResponse:
        await self._transfers.delete(ctx, request.transfer_id)
        return pb.DeleteTransferResponse()


def _paginate(
    response: pb.ListTransfersResponse, ctx: RequestContext, page: ListPage[Transfer]
) -> None:
    """Cinder's ``transfers_links``, named after the extension's collection."""
    for link in next_link(ctx, page, ctx.original_path, COLLECTION) or ():
        entry = struct_pb2.Struct()
        entry.update(link)
        response.transfers_links.values.add().struct_value.CopyFrom(entry)
