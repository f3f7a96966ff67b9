"""The public ActionService: Cinder's answer to an action no RPC serves.

Each of Cinder's actions is its own RPC bound to ``.../action/<name>`` (the gateway appends
the body's only key to the path); a name none of them binds reaches this service instead.
"""

from __future__ import annotations

from cindermesh.errors import InvalidInput
from cindermesh_pb.api.v1 import action_service_pb2 as pb
from cindermesh_pb.api.v1 import action_service_pb2_grpc as pb_grpc
from services.api.edge.request_context import RequestContext
from services.api.edge.rpc import Edge, rpc

__all__ = ["UnknownActionServicer"]


class UnknownActionServicer(pb_grpc.ActionServiceServicer):
    def __init__(self, edge: Edge) -> None:
        self._edge = edge

    @rpc()
    async def UnknownAction(
        self, request: pb.UnknownActionRequest, ctx: RequestContext
    ) -> pb.UnknownActionResponse:
        """Cinder checks no policy here: the action is looked up before any is known. A body
        of several keys is malformed (Cinder's ``action_peek``)."""
        body = request.body
        if body.HasField("struct_value") and len(body.struct_value.fields) > 1:
            raise InvalidInput("Malformed request body")
        raise InvalidInput(
            f"There is no such action: {request.action}. Verify the request body and "
            "Content-Type header and try again."
        )
