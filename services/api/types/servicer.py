"""The public TypeService: each RPC goes through the edge to one volume-type operation."""

from __future__ import annotations

from google.protobuf import struct_pb2

from cindermesh_pb.api.v1 import type_service_pb2 as types_pb2
from cindermesh_pb.api.v1 import type_service_pb2_grpc as types_pb2_grpc
from services.api.edge.request_context import RequestContext
from services.api.edge.rpc import Edge, rpc
from services.api.schema import JsonValue
from services.api.types.access import TypeAccessOperations
from services.api.types.body import (
    check_spec_key_matches,
    validate_encryption,
    validate_extra_spec_update,
    validate_extra_specs_create,
    validate_type_action,
    validate_type_create,
    validate_type_update,
)
from services.api.types.encryption import TypeEncryptionOperations, encryption_fields
from services.api.types.extra_specs import TypeExtraSpecs
from services.api.types.operations import VolumeTypeOperations, type_view

__all__ = ["TypeServicer"]


def _struct(fields: dict[str, JsonValue]) -> struct_pb2.Struct:
    struct = struct_pb2.Struct()
    struct.update(fields)
    return struct


class TypeServicer(types_pb2_grpc.TypeServiceServicer):
    def __init__(self, edge: Edge, types: VolumeTypeOperations) -> None:
        self._edge = edge
        self._types = types
        self._specs = TypeExtraSpecs(types.db)
        self._access = TypeAccessOperations(types.db)
        self._encryption = TypeEncryptionOperations(types.db)

    @rpc(policy="volume_extension:type_get_all")
    async def ListTypes(
        self, request: types_pb2.ListTypesRequest, ctx: RequestContext
    ) -> types_pb2.ListTypesResponse:
        is_public = request.is_public if request.HasField("is_public") else None
        records = await self._types.list(ctx, is_public)
        return types_pb2.ListTypesResponse(
            volume_types=[type_view(ctx, r, access_field=True) for r in records]
        )

    @rpc(policy="volume_extension:type_get")
    async def GetDefaultType(
        self, request: types_pb2.GetDefaultTypeRequest, ctx: RequestContext
    ) -> types_pb2.TypeResponse:
        record = await self._types.get_default(ctx)
        return types_pb2.TypeResponse(volume_type=type_view(ctx, record, access_field=False))

    @rpc(policy="volume_extension:type_get")
    async def GetType(
        self, request: types_pb2.GetTypeRequest, ctx: RequestContext
    ) -> types_pb2.TypeResponse:
        record = await self._types.get(ctx, request.type_id)
        return types_pb2.TypeResponse(volume_type=type_view(ctx, record, access_field=True))

    @rpc(domain_policy="volume_extension:type_create")
    async def CreateType(
        self, request: types_pb2.CreateTypeRequest, ctx: RequestContext
    ) -> types_pb2.TypeResponse:
        # Cinder validates the body before it checks the policy.
        record = await self._types.create(ctx, validate_type_create(request.body))
        view = type_view(ctx, record, access_field=True, qos_field=False)
        return types_pb2.TypeResponse(volume_type=view)

    @rpc(policy="volume_extension:type_delete")
    async def DeleteType(
        self, request: types_pb2.DeleteTypeRequest, ctx: RequestContext
    ) -> types_pb2.DeleteTypeResponse:
        await self._types.delete(ctx, request.type_id)
        return types_pb2.DeleteTypeResponse()

    @rpc(domain_policy="volume_extension:type_update")
    async def UpdateType(
        self, request: types_pb2.UpdateTypeRequest, ctx: RequestContext
    ) -> types_pb2.TypeResponse:
        update = validate_type_update(request.body)
        record = await self._types.update(ctx, request.type_id, update)
        view = type_view(ctx, record, access_field=False, qos_field=False)
        return types_pb2.TypeResponse(volume_type=view)

    @rpc(policy="volume_extension:types_extra_specs:index")
    async def ListTypeExtraSpecs(
        self, request: types_pb2.TypeExtraSpecsRequest, ctx: RequestContext
    ) -> types_pb2.TypeExtraSpecsResponse:
        specs = await self._specs.list(ctx, request.type_id)
        return types_pb2.TypeExtraSpecsResponse(extra_specs=specs)

    @rpc(domain_policy="volume_extension:types_extra_specs:create")
    async def CreateTypeExtraSpecs(
        self, request: types_pb2.TypeExtraSpecsRequest, ctx: RequestContext
    ) -> types_pb2.TypeExtraSpecsResponse:
        specs = validate_extra_specs_create(request.body)
        await self._specs.merge(
            ctx, request.type_id, specs, rule="volume_extension:types_extra_specs:create"
        )
        return types_pb2.TypeExtraSpecsResponse(extra_specs=specs)

    @rpc(policy="volume_extension:types_extra_specs:show")
    async def GetTypeExtraSpec(
        self, request: types_pb2.TypeExtraSpecRequest, ctx: RequestContext
    ) -> struct_pb2.Struct:
        value = await self._specs.get(ctx, request.type_id, request.key)
        return _struct({request.key: value})

    @rpc(domain_policy="volume_extension:types_extra_specs:update")
    async def UpdateTypeExtraSpec(
        self, request: types_pb2.TypeExtraSpecRequest, ctx: RequestContext
    ) -> struct_pb2.Struct:
        specs = validate_extra_spec_update(request.body)
        await self._specs.check_type_for_update(ctx, request.type_id)
        check_spec_key_matches(request.key, request.body)
        await self._specs.merge(
            ctx, request.type_id, specs, rule="volume_extension:types_extra_specs:update"
        )
        return _struct(dict(specs))

    @rpc(domain_policy="volume_extension:types_extra_specs:delete")
    async def DeleteTypeExtraSpec(
        self, request: types_pb2.TypeExtraSpecRequest, ctx: RequestContext
    ) -> types_pb2.DeleteTypeExtraSpecResponse:
        await self._specs.delete(ctx, request.type_id, request.key)
        return types_pb2.DeleteTypeExtraSpecResponse()

    @rpc(policy="volume_extension:volume_type_access:get_all_for_type")
    async def ListTypeAccess(
        self, request: types_pb2.ListTypeAccessRequest, ctx: RequestContext
    ) -> types_pb2.ListTypeAccessResponse:
        projects = await self._access.list(ctx, request.type_id)
        return types_pb2.ListTypeAccessResponse(
            volume_type_access=[
                types_pb2.TypeAccess(volume_type_id=request.type_id, project_id=p) for p in projects
            ]
        )

    @rpc(
        domain_policy=(
            "volume_extension:volume_type_access:addProjectAccess",
            "volume_extension:volume_type_access:removeProjectAccess",
        )
    )
    async def TypeAction(
        self, request: types_pb2.TypeActionRequest, ctx: RequestContext
    ) -> types_pb2.TypeActionResponse:
        await self._access.apply(ctx, request.type_id, validate_type_action(request.body))
        return types_pb2.TypeActionResponse()

    @rpc(policy="volume_extension:volume_type_encryption:get")
    async def GetTypeEncryption(
        self, request: types_pb2.TypeEncryptionRequest, ctx: RequestContext
    ) -> types_pb2.TypeEncryption:
        encryption = await self._encryption.get(ctx, request.type_id)
        view = types_pb2.TypeEncryption()
        if encryption is not None:
            fields = encryption_fields(encryption)
            for name in ("key_size", "cipher", "updated_at", "deleted_at"):
                getattr(view, name).CopyFrom(_struct({name: fields.pop(name)}).fields[name])
            for name, value in fields.items():
                setattr(view, name, value)
        return view

    @rpc(domain_policy="volume_extension:volume_type_encryption:create")
    async def CreateTypeEncryption(
        self, request: types_pb2.TypeEncryptionRequest, ctx: RequestContext
    ) -> types_pb2.TypeEncryptionResponse:
        fields = await self._encryption.create(
            ctx, request.type_id, validate_encryption(request.body, create=True)
        )
        return types_pb2.TypeEncryptionResponse(encryption=_struct(fields))

    @rpc(policy="volume_extension:volume_type_encryption:get")
    async def GetTypeEncryptionItem(
        self, request: types_pb2.TypeEncryptionItemRequest, ctx: RequestContext
    ) -> struct_pb2.Struct:
        value = await self._encryption.get_item(ctx, request.type_id, request.key)
        return _struct({request.key: value})

    @rpc(domain_policy="volume_extension:volume_type_encryption:update")
    async def UpdateTypeEncryption(
        self, request: types_pb2.TypeEncryptionItemRequest, ctx: RequestContext
    ) -> types_pb2.TypeEncryptionResponse:
        fields = await self._encryption.update(
            ctx, request.type_id, validate_encryption(request.body, create=False)
        )
        return types_pb2.TypeEncryptionResponse(encryption=_struct(fields))

    @rpc(policy="volume_extension:volume_type_encryption:delete")
    async def DeleteTypeEncryption(
        self, request: types_pb2.TypeEncryptionItemRequest, ctx: RequestContext
    ) -> types_pb2.DeleteTypeEncryptionResponse:
        await self._encryption.delete(ctx, request.type_id)
        return types_pb2.DeleteTypeEncryptionResponse()
