"""The public GroupSnapshotService (from 3.14; reset status 3.19)."""

from __future__ import annotations

from cindermesh_pb.api.v1 import group_service_pb2 as pb
from cindermesh_pb.api.v1 import group_service_pb2_grpc as pb_grpc
from services.api.edge.request_context import RequestContext
from services.api.edge.rpc import Edge, rpc
from services.api.groups.body import (
    validate_group_snapshot_create,
    validate_group_snapshot_reset_status,
)
from services.api.groups.servicer import GROUP_SNAPSHOTS, require_version
from services.api.groups.snapshots import GroupSnapshotOperations, parse_group_snapshot_query
from services.api.groups.views import group_snapshot_detail, group_snapshot_summary
from services.api.volumes.listing import add_next_link

__all__ = ["GroupSnapshotServicer"]

GROUP_SNAPSHOT_RESET_STATUS = 19


class GroupSnapshotServicer(pb_grpc.GroupSnapshotServiceServicer):
    def __init__(self, edge: Edge, group_snapshots: GroupSnapshotOperations) -> None:
        self._edge = edge
        self._group_snapshots = group_snapshots

    @rpc(domain_policy="group:create_group_snapshot")
    async def CreateGroupSnapshot(
        self, request: pb.GroupSnapshotBodyRequest, ctx: RequestContext
    ) -> pb.GroupSnapshotResponse:
        require_version(ctx, GROUP_SNAPSHOTS)
        given = validate_group_snapshot_create(request.body)
        created = await self._group_snapshots.create(ctx, given)
        return pb.GroupSnapshotResponse(
            group_snapshot=group_snapshot_summary(created, with_type=True)
        )

    @rpc(policy="group:get_all_group_snapshots")
    async def ListGroupSnapshots(
        self, request: pb.ListGroupSnapshotsRequest, ctx: RequestContext
    ) -> pb.ListGroupSnapshotsResponse:
        require_version(ctx, GROUP_SNAPSHOTS)
        query = parse_group_snapshot_query(ctx, request)
        page, _ = await self._group_snapshots.list(ctx, query)
        response = pb.ListGroupSnapshotsResponse(
            group_snapshots=[group_snapshot_summary(g, with_type=False) for g in page.rows]
        )
        add_next_link(response.group_snapshot_links, ctx, page, "group_snapshots")
        return response

    @rpc(policy="group:get_all_group_snapshots")
    async def ListGroupSnapshotsDetail(
        self, request: pb.ListGroupSnapshotsRequest, ctx: RequestContext
    ) -> pb.ListGroupSnapshotsResponse:
        require_version(ctx, GROUP_SNAPSHOTS)
        query = parse_group_snapshot_query(ctx, request)
        page, statuses = await self._group_snapshots.list(ctx, query)
        response = pb.ListGroupSnapshotsResponse(
            group_snapshots=[group_snapshot_detail(ctx, g, statuses[g.id]) for g in page.rows]
        )
        add_next_link(response.group_snapshot_links, ctx, page, "group_snapshots")
        return response

    @rpc(policy="group:get_group_snapshot")
    async def GetGroupSnapshot(
        self, request: pb.GroupSnapshotRequest, ctx: RequestContext
    ) -> pb.GroupSnapshotResponse:
        require_version(ctx, GROUP_SNAPSHOTS)
        found, status = await self._group_snapshots.get(ctx, request.group_snapshot_id)
        return pb.GroupSnapshotResponse(group_snapshot=group_snapshot_detail(ctx, found, status))

    @rpc(domain_policy="group:delete_group_snapshot")
    async def DeleteGroupSnapshot(
        self, request: pb.GroupSnapshotRequest, ctx: RequestContext
    ) -> pb.GroupEmptyResponse:
        require_version(ctx, GROUP_SNAPSHOTS)
        await self._group_snapshots.delete(ctx, request.group_snapshot_id)
        return pb.GroupEmptyResponse()

    @rpc(domain_policy="group:reset_group_snapshot_status")
    async def ResetGroupSnapshotStatus(
        self, request: pb.ResetGroupSnapshotStatusRequest, ctx: RequestContext
    ) -> pb.GroupEmptyResponse:
        require_version(ctx, GROUP_SNAPSHOT_RESET_STATUS)
        status = validate_group_snapshot_reset_status(request.reset_status)
        await self._group_snapshots.reset_status(ctx, request.group_snapshot_id, status)
        return pb.GroupEmptyResponse()
