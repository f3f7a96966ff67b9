"""The public GroupTypeService and GroupService: each RPC goes through the edge to one
operation. Below an API's microversion (group types 3.11, groups 3.13, create from a source
3.14, reset status 3.20) the path is Cinder's 404."""

from __future__ import annotations

from google.protobuf import struct_pb2

from cindermesh.errors import NotFound
from cindermesh_pb.api.v1 import group_service_pb2 as pb
from cindermesh_pb.api.v1 import group_service_pb2_grpc as pb_grpc
from services.api.edge.request_context import RequestContext
from services.api.edge.rpc import Edge, rpc
from services.api.groups.body import (
    validate_group_create,
    validate_group_delete,
    validate_group_reset_status,
    validate_group_type_create,
    validate_group_type_update,
    validate_group_update,
)
from services.api.groups.operations import GroupOperations, parse_group_query
from services.api.groups.sources import GroupSources
from services.api.groups.types import GroupTypeOperations
from services.api.groups.views import group_summary, group_type_view, group_view
from services.api.schema import is_true
from services.api.types.body import (
    check_spec_key_matches,
    validate_extra_spec_update,
    validate_extra_specs_create,
)
from services.api.volumes.listing import add_next_link

__all__ = ["GroupServicer", "GroupTypeServicer", "require_version"]

#: webob's 404 text: Cinder's answer where no method serves the URL at this version.
RESOURCE_NOT_FOUND = "The resource could not be found."
GROUP_TYPES = 11
GROUPS = 13
GROUP_SNAPSHOTS = 14
GROUP_RESET_STATUS = 20
LIST_VOLUMES = 25


def require_version(ctx: RequestContext, minor: int) -> None:
    if not ctx.version.at_least(minor):
        raise NotFound(RESOURCE_NOT_FOUND)


def _struct(values: dict[str, str | None]) -> struct_pb2.Struct:
    struct = struct_pb2.Struct()
    struct.update({k: v if v is not None else "" for k, v in values.items()})
    return struct


class GroupTypeServicer(pb_grpc.GroupTypeServiceServicer):
    def __init__(self, edge: Edge, types: GroupTypeOperations) -> None:
        self._edge = edge
        self._types = types

    @rpc()
    async def ListGroupTypes(
        self, request: pb.ListGroupTypesRequest, ctx: RequestContext
    ) -> pb.ListGroupTypesResponse:
        """Cinder checks no policy to list or show group types."""
        require_version(ctx, GROUP_TYPES)
        records = await self._types.list(ctx, request)
        return pb.ListGroupTypesResponse(
            group_types=[group_type_view(ctx, r.group_type, r.specs) for r in records]
        )

    @rpc(policy="group:group_types:create")
    async def CreateGroupType(
        self, request: pb.GroupTypeBodyRequest, ctx: RequestContext
    ) -> pb.GroupTypeResponse:
        require_version(ctx, GROUP_TYPES)
        record = await self._types.create(validate_group_type_create(request.body))
        return pb.GroupTypeResponse(
            group_type=group_type_view(ctx, record.group_type, record.specs)
        )

    @rpc()
    async def GetGroupType(
        self, request: pb.GroupTypeRequest, ctx: RequestContext
    ) -> pb.GroupTypeResponse:
        require_version(ctx, GROUP_TYPES)
        record = await self._types.get(ctx, request.group_type_id)
        return pb.GroupTypeResponse(
            group_type=group_type_view(ctx, record.group_type, record.specs)
        )

    @rpc(policy="group:group_types:update")
    async def UpdateGroupType(
        self, request: pb.GroupTypeBodyRequest, ctx: RequestContext
    ) -> pb.GroupTypeResponse:
        require_version(ctx, GROUP_TYPES)
        change = validate_group_type_update(request.body)
        record = await self._types.update(ctx, request.group_type_id, change)
        return pb.GroupTypeResponse(
            group_type=group_type_view(ctx, record.group_type, record.specs)
        )

    @rpc(policy="group:group_types:delete")
    async def DeleteGroupType(
        self, request: pb.GroupTypeRequest, ctx: RequestContext
    ) -> pb.GroupEmptyResponse:
        require_version(ctx, GROUP_TYPES)
        await self._types.delete(ctx, request.group_type_id)
        return pb.GroupEmptyResponse()

    @rpc(policy="group:group_types_specs:get_all")
    async def ListGroupSpecs(
        self, request: pb.GroupTypeRequest, ctx: RequestContext
    ) -> pb.GroupSpecsResponse:
        require_version(ctx, GROUP_TYPES)
        specs = await self._types.specs(ctx, request.group_type_id)
        return pb.GroupSpecsResponse(group_specs=_struct(specs))

    @rpc(policy="group:group_types_specs:create")
    async def CreateGroupSpecs(
        self, request: pb.GroupTypeBodyRequest, ctx: RequestContext
    ) -> pb.GroupSpecsResponse:
        require_version(ctx, GROUP_TYPES)
        specs = validate_extra_specs_create(request.body, "group_specs")
        await self._types.set_specs(ctx, request.group_type_id, specs)
        return pb.GroupSpecsResponse(group_specs=request.body.fields["group_specs"].struct_value)

    @rpc(policy="group:group_types_specs:get")
    async def GetGroupSpec(
        self, request: pb.GroupSpecRequest, ctx: RequestContext
    ) -> struct_pb2.Struct:
        require_version(ctx, GROUP_TYPES)
        value = await self._types.spec(ctx, request.group_type_id, request.key)
        return _struct({request.key: value})

    @rpc(policy="group:group_types_specs:update")
    async def UpdateGroupSpec(
        self, request: pb.GroupSpecRequest, ctx: RequestContext
    ) -> struct_pb2.Struct:
        require_version(ctx, GROUP_TYPES)
        specs = validate_extra_spec_update(request.body)
        await self._types.specs(ctx, request.group_type_id)  # 404 before the mismatch
        check_spec_key_matches(request.key, request.body)
        await self._types.set_specs(ctx, request.group_type_id, specs)
        return request.body

    @rpc(policy="group:group_types_specs:delete")
    async def DeleteGroupSpec(
        self, request: pb.GroupSpecRequest, ctx: RequestContext
    ) -> pb.GroupEmptyResponse:
        require_version(ctx, GROUP_TYPES)
        await self._types.delete_spec(ctx, request.group_type_id, request.key)
        return pb.GroupEmptyResponse()


class GroupServicer(pb_grpc.GroupServiceServicer):
    def __init__(self, edge: Edge, groups: GroupOperations, sources: GroupSources) -> None:
        self._edge = edge
        self._groups = groups
        self._sources = sources

    @rpc(domain_policy="group:create")
    async def CreateGroup(
        self, request: pb.GroupBodyRequest, ctx: RequestContext
    ) -> pb.GroupSummaryResponse:
        require_version(ctx, GROUPS)
        group = await self._groups.create(ctx, validate_group_create(request.body))
        return pb.GroupSummaryResponse(group=group_summary(group))

    @rpc(domain_policy="group:create")
    async def CreateGroupFromSource(
        self, request: pb.CreateGroupFromSourceRequest, ctx: RequestContext
    ) -> pb.GroupSummaryResponse:
        require_version(ctx, GROUP_SNAPSHOTS)
        group = await self._sources.create(ctx, request.create_from_src)
        return pb.GroupSummaryResponse(group=group_summary(group))

    @rpc(policy="group:get_all")
    async def ListGroups(
        self, request: pb.ListGroupsRequest, ctx: RequestContext
    ) -> pb.ListGroupSummariesResponse:
        require_version(ctx, GROUPS)
        query = parse_group_query(ctx, request)
        page, _ = await self._groups.list(ctx, query, detail=False, list_volume=False)
        response = pb.ListGroupSummariesResponse(groups=[group_summary(g) for g in page.rows])
        add_next_link(response.group_links, ctx, page, "groups")
        return response

    @rpc(policy="group:get_all")
    async def ListGroupsDetail(
        self, request: pb.ListGroupsRequest, ctx: RequestContext
    ) -> pb.ListGroupsResponse:
        require_version(ctx, GROUPS)
        listed = _list_volume(ctx, request.list_volume if request.HasField("list_volume") else "")
        query = parse_group_query(ctx, request)
        page, records = await self._groups.list(ctx, query, detail=True, list_volume=listed)
        response = pb.ListGroupsResponse(groups=[group_view(ctx, r) for r in records])
        add_next_link(response.group_links, ctx, page, "groups")
        return response

    @rpc(policy="group:get")
    async def GetGroup(self, request: pb.GetGroupRequest, ctx: RequestContext) -> pb.GroupResponse:
        require_version(ctx, GROUPS)
        listed = _list_volume(ctx, request.list_volume if request.HasField("list_volume") else "")
        record = await self._groups.get(ctx, request.group_id, listed)
        return pb.GroupResponse(group=group_view(ctx, record))

    @rpc(domain_policy="group:update")
    async def UpdateGroup(
        self, request: pb.GroupBodyRequest, ctx: RequestContext
    ) -> pb.GroupEmptyResponse:
        require_version(ctx, GROUPS)
        await self._groups.update(ctx, request.group_id, validate_group_update(request.body))
        return pb.GroupEmptyResponse()

    @rpc(domain_policy="group:delete")
    async def DeleteGroup(
        self, request: pb.DeleteGroupRequest, ctx: RequestContext
    ) -> pb.GroupEmptyResponse:
        require_version(ctx, GROUPS)
        delete_volumes = validate_group_delete(request.delete)
        await self._groups.delete(ctx, request.group_id, delete_volumes)
        return pb.GroupEmptyResponse()

    @rpc(domain_policy="group:reset_status")
    async def ResetGroupStatus(
        self, request: pb.ResetStatusRequest, ctx: RequestContext
    ) -> pb.GroupEmptyResponse:
        require_version(ctx, GROUP_RESET_STATUS)
        status = validate_group_reset_status(request.reset_status)
        await self._groups.reset_status(ctx, request.group_id, status)
        return pb.GroupEmptyResponse()


def _list_volume(ctx: RequestContext, value: str) -> bool:
    """From 3.25: ``list_volume`` adds the group's volume ids to its view."""
    return ctx.version.at_least(LIST_VOLUMES) and is_true(value)
