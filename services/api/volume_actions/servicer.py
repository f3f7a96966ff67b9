"""The public VolumeActionService: each of a volume's actions (``POST /volumes/{id}/action``)
is its own RPC, its body parsed with Cinder's schema (``body``), then one operation
(``operations.VolumeActions``). The policies are authorized by the operations once they found
the volume (Cinder's order: 404 before 403)."""

from __future__ import annotations

from cindermesh.errors import NotFound
from cindermesh_pb.api.v1 import volume_action_service_pb2 as pb
from cindermesh_pb.api.v1 import volume_action_service_pb2_grpc as pb_grpc
from services.api.edge.request_context import RequestContext
from services.api.edge.rpc import Edge, rpc
from services.api.volume_actions.body import (
    parse_attach,
    parse_bootable,
    parse_detach,
    parse_extend,
    parse_force_detach,
    parse_initialize_connection,
    parse_readonly,
    parse_reset_status,
    parse_retype,
    parse_revert,
    parse_terminate_connection,
)
from services.api.volume_actions.operations import RULES, VolumeActions

__all__ = ["VolumeActionServicer"]

#: webob's 404 text: an action served only from a microversion on, asked below it.
RESOURCE_NOT_FOUND = "The resource could not be found."


class VolumeActionServicer(pb_grpc.VolumeActionServiceServicer):
    def __init__(self, edge: Edge, actions: VolumeActions) -> None:
        self._edge = edge
        self._actions = actions

    @rpc(domain_policy=(RULES.EXTEND, RULES.EXTEND_ATTACHED))
    async def ExtendVolume(
        self, request: pb.ExtendVolumeRequest, ctx: RequestContext
    ) -> pb.ExtendVolumeResponse:
        new_size = parse_extend(request.os_extend)
        await self._actions.extend(ctx, request.volume_id, new_size)
        return pb.ExtendVolumeResponse()

    @rpc(domain_policy=RULES.RESET_STATUS)
    async def ResetVolumeStatus(
        self, request: pb.ResetVolumeStatusRequest, ctx: RequestContext
    ) -> pb.ResetVolumeStatusResponse:
        reset = parse_reset_status(request.os_reset_status)
        await self._actions.reset_status(ctx, request.volume_id, reset)
        return pb.ResetVolumeStatusResponse()

    @rpc(domain_policy=RULES.FORCE_DELETE)
    async def ForceDeleteVolume(
        self, request: pb.ForceDeleteVolumeRequest, ctx: RequestContext
    ) -> pb.ForceDeleteVolumeResponse:
        await self._actions.force_delete(ctx, request.volume_id)
        return pb.ForceDeleteVolumeResponse()

    @rpc(domain_policy=RULES.UPDATE)
    async def SetVolumeBootable(
        self, request: pb.SetVolumeBootableRequest, ctx: RequestContext
    ) -> pb.SetVolumeBootableResponse:
        bootable = parse_bootable(request.os_set_bootable)
        await self._actions.set_bootable(ctx, request.volume_id, bootable)
        return pb.SetVolumeBootableResponse()

    @rpc(domain_policy=RULES.UPDATE_READONLY)
    async def UpdateVolumeReadonlyFlag(
        self, request: pb.UpdateVolumeReadonlyFlagRequest, ctx: RequestContext
    ) -> pb.UpdateVolumeReadonlyFlagResponse:
        readonly = parse_readonly(request.os_update_readonly_flag)
        await self._actions.update_readonly(ctx, request.volume_id, readonly)
        return pb.UpdateVolumeReadonlyFlagResponse()

    @rpc(domain_policy=(RULES.RETYPE, RULES.MULTIATTACH))
    async def RetypeVolume(
        self, request: pb.RetypeVolumeRequest, ctx: RequestContext
    ) -> pb.RetypeVolumeResponse:
        new_type, policy = parse_retype(request.os_retype)
        await self._actions.retype(ctx, request.volume_id, new_type, policy)
        return pb.RetypeVolumeResponse()

    @rpc(domain_policy=RULES.REVERT)
    async def RevertVolumeToSnapshot(
        self, request: pb.RevertVolumeToSnapshotRequest, ctx: RequestContext
    ) -> pb.RevertVolumeToSnapshotResponse:
        if not ctx.version.at_least(40):
            raise NotFound(RESOURCE_NOT_FOUND)
        snapshot_id = parse_revert(request.revert)
        await self._actions.revert(ctx, request.volume_id, snapshot_id)
        return pb.RevertVolumeToSnapshotResponse()

    @rpc(domain_policy=RULES.RESERVE)
    async def ReserveVolume(
        self, request: pb.ReserveVolumeRequest, ctx: RequestContext
    ) -> pb.ReserveVolumeResponse:
        await self._actions.reserve(ctx, request.volume_id)
        return pb.ReserveVolumeResponse()

    @rpc(domain_policy=RULES.UNRESERVE)
    async def UnreserveVolume(
        self, request: pb.UnreserveVolumeRequest, ctx: RequestContext
    ) -> pb.UnreserveVolumeResponse:
        await self._actions.unreserve(ctx, request.volume_id)
        return pb.UnreserveVolumeResponse()

    @rpc(domain_policy=RULES.BEGIN_DETACHING)
    async def BeginDetachingVolume(
        self, request: pb.BeginDetachingVolumeRequest, ctx: RequestContext
    ) -> pb.BeginDetachingVolumeResponse:
        await self._actions.begin_detaching(ctx, request.volume_id)
        return pb.BeginDetachingVolumeResponse()

    @rpc(domain_policy=RULES.DETACH)
    async def DetachVolume(
        self, request: pb.DetachVolumeRequest, ctx: RequestContext
    ) -> pb.DetachVolumeResponse:
        attachment_id = parse_detach(request.os_detach)
        await self._actions.detach(ctx, request.volume_id, attachment_id)
        return pb.DetachVolumeResponse()

    @rpc(domain_policy=RULES.ROLL_DETACHING)
    async def RollDetachingVolume(
        self, request: pb.RollDetachingVolumeRequest, ctx: RequestContext
    ) -> pb.RollDetachingVolumeResponse:
        await self._actions.roll_detaching(ctx, request.volume_id)
        return pb.RollDetachingVolumeResponse()

    @rpc(domain_policy=RULES.ATTACH)
    async def AttachVolume(
        self, request: pb.AttachVolumeRequest, ctx: RequestContext
    ) -> pb.AttachVolumeResponse:
        attach = parse_attach(request.os_attach)
        await self._actions.attach(ctx, request.volume_id, attach)
        return pb.AttachVolumeResponse()

    @rpc(domain_policy=RULES.INITIALIZE)
    async def InitializeVolumeConnection(
        self, request: pb.InitializeVolumeConnectionRequest, ctx: RequestContext
    ) -> pb.InitializeVolumeConnectionResponse:
        connector = parse_initialize_connection(request.os_initialize_connection)
        info = await self._actions.initialize_connection(ctx, request.volume_id, connector)
        response = pb.InitializeVolumeConnectionResponse()
        response.connection_info.update(info)
        return response

    @rpc(domain_policy=RULES.TERMINATE)
    async def TerminateVolumeConnection(
        self, request: pb.TerminateVolumeConnectionRequest, ctx: RequestContext
    ) -> pb.TerminateVolumeConnectionResponse:
        connector = parse_terminate_connection(request.os_terminate_connection)
        await self._actions.terminate_connection(ctx, request.volume_id, connector)
        return pb.TerminateVolumeConnectionResponse()

    @rpc(domain_policy=RULES.FORCE_DETACH)
    async def ForceDetachVolume(
        self, request: pb.ForceDetachVolumeRequest, ctx: RequestContext
    ) -> pb.ForceDetachVolumeResponse:
        detach = parse_force_detach(request.os_force_detach)
        await self._actions.force_detach(ctx, request.volume_id, detach)
        return pb.ForceDetachVolumeResponse()
