"""The public AttachmentService (microversion 3.27 on; the completion 3.44 on): each RPC goes
through the edge to one attachment operation. Below its microversion an RPC answers webob's
404, as Cinder's versioned controller."""

from __future__ import annotations

from cindermesh.errors import NotFound
from cindermesh_pb.api.v1 import attachment_service_pb2 as pb
from cindermesh_pb.api.v1 import attachment_service_pb2_grpc as pb_grpc
from services.api.attachments.body import parse_complete, parse_create, parse_update
from services.api.attachments.listing import parse_attachment_query
from services.api.attachments.operations import RULES, AttachmentOperations
from services.api.attachments.views import attachment_view
from services.api.edge.request_context import RequestContext
from services.api.edge.rpc import Edge, rpc
from services.api.volumes.servicer import RESOURCE_NOT_FOUND

__all__ = ["AttachmentServicer"]

#: Cinder's ``NEW_ATTACH`` and ``NEW_ATTACH_COMPLETION`` microversions (3.27, 3.44).
NEW_ATTACH = 27
NEW_ATTACH_COMPLETION = 44


def _require(ctx: RequestContext, minor: int) -> None:
    if not ctx.version.at_least(minor):
        raise NotFound(RESOURCE_NOT_FOUND)


class AttachmentServicer(pb_grpc.AttachmentServiceServicer):
    def __init__(self, edge: Edge, attachments: AttachmentOperations) -> None:
        self._edge = edge
        self._attachments = attachments

    @rpc(domain_policy=(RULES.CREATE, RULES.MULTIATTACH_BOOTABLE))
    async def CreateAttachment(
        self, request: pb.CreateAttachmentRequest, ctx: RequestContext
    ) -> pb.AttachmentResponse:
        _require(ctx, NEW_ATTACH)
        given = parse_create(request.attachment, request.HasField("attachment"), ctx.version)
        answer = await self._attachments.create(ctx, given)
        view = attachment_view(answer.attachment, True, connection_info=answer.connection_info)
        return pb.AttachmentResponse(attachment=view)

    @rpc()
    async def GetAttachment(
        self, request: pb.GetAttachmentRequest, ctx: RequestContext
    ) -> pb.AttachmentResponse:
        _require(ctx, NEW_ATTACH)
        attachment, connection_format = await self._attachments.get(ctx, request.attachment_id)
        view = attachment_view(attachment, detail=True, connection_format=connection_format)
        return pb.AttachmentResponse(attachment=view)

    @rpc(project_field="url_project_id")
    async def ListAttachments(
        self, request: pb.ListAttachmentsRequest, ctx: RequestContext
    ) -> pb.ListAttachmentsResponse:
        return await self._list(request, ctx, detail=False)

    @rpc(project_field="url_project_id")
    async def ListAttachmentsDetail(
        self, request: pb.ListAttachmentsRequest, ctx: RequestContext
    ) -> pb.ListAttachmentsResponse:
        return await self._list(request, ctx, detail=True)

    async def _list(
        self, request: pb.ListAttachmentsRequest, ctx: RequestContext, detail: bool
    ) -> pb.ListAttachmentsResponse:
        _require(ctx, NEW_ATTACH)
        page = await self._attachments.page(ctx, parse_attachment_query(ctx, request))
        return pb.ListAttachmentsResponse(
            attachments=[attachment_view(a, detail=detail) for a in page.rows]
        )

    @rpc(domain_policy=RULES.UPDATE)
    async def UpdateAttachment(
        self, request: pb.UpdateAttachmentRequest, ctx: RequestContext
    ) -> pb.AttachmentResponse:
        _require(ctx, NEW_ATTACH)
        connector = parse_update(request.attachment, request.HasField("attachment"))
        answer = await self._attachments.update(ctx, request.attachment_id, connector)
        view = attachment_view(answer.attachment, True, connection_info=answer.connection_info)
        return pb.AttachmentResponse(attachment=view)

    @rpc(domain_policy=RULES.COMPLETE)
    async def CompleteAttachment(
        self, request: pb.CompleteAttachmentRequest, ctx: RequestContext
    ) -> pb.CompleteAttachmentResponse:
        _require(ctx, NEW_ATTACH_COMPLETION)
        parse_complete(request.HasField("os_complete"))
        await self._attachments.complete(ctx, request.attachment_id)
        return pb.CompleteAttachmentResponse()

    @rpc(domain_policy=RULES.DELETE)
    async def DeleteAttachment(
        self, request: pb.DeleteAttachmentRequest, ctx: RequestContext
    ) -> pb.ListAttachmentsResponse:
        _require(ctx, NEW_ATTACH)
        left = await self._attachments.delete(ctx, request.attachment_id)
        return pb.ListAttachmentsResponse(
            attachments=[attachment_view(a, detail=False) for a in left]
        )
