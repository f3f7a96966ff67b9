"""The public MessageService: Cinder's user messages (from 3.3)."""

from __future__ import annotations

from cindermesh.db.messages import user_message_text
from cindermesh.db.models import Message
from cindermesh.errors import NotFound
from cindermesh_pb.api.v1 import message_service_pb2 as pb
from cindermesh_pb.api.v1 import message_service_pb2_grpc as pb_grpc
from services.api.edge.request_context import RequestContext
from services.api.edge.rpc import Edge, rpc
from services.api.messages.operations import (
    FILTERS,
    MESSAGES_VERSION,
    PAGINATION_VERSION,
    MessageOperations,
    MessageQuery,
)
from services.api.view_values import format_time

__all__ = ["MessageServicer", "message_view"]


def _require_version(ctx: RequestContext) -> None:
    """Cinder's answer below 3.3: the method does not exist."""
    if not ctx.version.at_least(MESSAGES_VERSION):
        raise NotFound("The resource could not be found.")


def _links(ctx: RequestContext, message_id: str) -> list[pb.MessageLink]:
    base = ctx.base_url.rstrip("/")
    project = ctx.caller.project_id
    return [
        pb.MessageLink(href=f"{base}/v3/{project}/messages/{message_id}", rel="self"),
        pb.MessageLink(href=f"{base}/{project}/messages/{message_id}", rel="bookmark"),
    ]


def message_view(ctx: RequestContext, message: Message) -> pb.Message:
    view = pb.Message(
        id=message.id,
        event_id=message.event_id,
        user_message=user_message_text(message.action_id, message.detail_id, message.filter_name),
        message_level=message.message_level,
        created_at=format_time(message.created_at),
        guaranteed_until=format_time(message.expires_at or message.created_at),
        request_id=message.request_id or "",
        links=_links(ctx, message.id),
    )
    if message.resource_type:
        view.resource_type = message.resource_type
    if message.resource_uuid:
        view.resource_uuid = message.resource_uuid
    return view


class MessageServicer(pb_grpc.MessageServiceServicer):
    def __init__(self, edge: Edge, messages: MessageOperations) -> None:
        self._edge = edge
        self._messages = messages

    @rpc(policy="message:get_all")
    async def ListMessages(
        self, request: pb.ListMessagesRequest, ctx: RequestContext
    ) -> pb.ListMessagesResponse:
        _require_version(ctx)

        def given(name: str) -> str | None:
            return getattr(request, name) if request.HasField(name) else None

        if ctx.version.at_least(PAGINATION_VERSION):
            query = MessageQuery(
                limit=given("limit"),
                marker=given("marker"),
                offset=given("offset"),
                sort=given("sort"),
                sort_key=given("sort_key"),
                sort_dir=given("sort_dir"),
                filters={k: v for k in FILTERS if (v := given(k)) is not None},
            )
        else:
            query = MessageQuery()
        rows = await self._messages.list(ctx, query)
        response = pb.ListMessagesResponse(messages=[message_view(ctx, m) for m in rows])
        if query.limit is not None and rows and len(rows) == query.limit:
            base = ctx.base_url.rstrip("/")
            page = f"limit={query.limit}&marker={rows[-1].id}"
            href = f"{base}/v3/{ctx.caller.project_id}/messages?{page}"
            response.messages_links.values.add().struct_value.update({"href": href, "rel": "next"})
        return response

    @rpc(policy="message:get")
    async def GetMessage(
        self, request: pb.GetMessageRequest, ctx: RequestContext
    ) -> pb.MessageResponse:
        _require_version(ctx)
        message = await self._messages.get(ctx, request.message_id)
        return pb.MessageResponse(message=message_view(ctx, message))

    @rpc(policy="message:delete")
    async def DeleteMessage(
        self, request: pb.DeleteMessageRequest, ctx: RequestContext
    ) -> pb.DeleteMessageResponse:
        _require_version(ctx)
        await self._messages.delete(ctx, request.message_id)
        return pb.DeleteMessageResponse()
