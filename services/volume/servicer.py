"""The VolumeManager gRPC edge: validate, call the manager, map domain errors to status."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import grpc
from google.protobuf import struct_pb2
from google.protobuf.json_format import MessageToDict, ParseDict

from cindermesh_pb.scheduler.v1 import scheduler_pb2
from cindermesh_pb.volume.v1 import volume_manager_pb2, volume_manager_pb2_grpc
from services.volume.domain import CreateRequest, RetryState, VolumeTypeRef
from services.volume.errors import (
    ConnectionFailed,
    InvalidConnector,
    SnapshotNotFound,
    SnapshotStateChanged,
    VolumeManagerError,
    VolumeNotFound,
    VolumeStateChanged,
    WrongBackend,
)
from services.volume.manager import Manager
from services.volume.reporter import CapabilityPublisher

__all__ = ["SERVICE_NAME", "VolumeManagerServicer", "create_request_from_proto"]

SERVICE_NAME: str = volume_manager_pb2.DESCRIPTOR.services_by_name["VolumeManager"].full_name

#: Domain error -> gRPC status; the first matching class wins.
_STATUS: tuple[tuple[type[VolumeManagerError], grpc.StatusCode], ...] = (
    (VolumeNotFound, grpc.StatusCode.NOT_FOUND),
    (SnapshotNotFound, grpc.StatusCode.NOT_FOUND),
    (SnapshotStateChanged, grpc.StatusCode.FAILED_PRECONDITION),
    (VolumeStateChanged, grpc.StatusCode.FAILED_PRECONDITION),
    (WrongBackend, grpc.StatusCode.FAILED_PRECONDITION),
    (InvalidConnector, grpc.StatusCode.INVALID_ARGUMENT),
    (ConnectionFailed, grpc.StatusCode.INTERNAL),
    (VolumeManagerError, grpc.StatusCode.INTERNAL),
)

Context = grpc.aio.ServicerContext[object, object]


def _status_of(error: VolumeManagerError) -> grpc.StatusCode:
    return next(code for kind, code in _STATUS if isinstance(error, kind))


class InvalidRequest(ValueError):
    pass


def _dict_of(value: struct_pb2.Struct) -> dict[str, object]:
    """A Struct as a dict (its numbers are floats: JSON's, as the Struct keeps them)."""
    found: dict[str, object] = MessageToDict(value)
    return found


def _struct_of(value: dict[str, object]) -> struct_pb2.Struct:
    """A JSON object as a Struct (its ints become floats; the client makes them ints again)."""
    return ParseDict(value, struct_pb2.Struct())


def create_request_from_proto(
    request: volume_manager_pb2.ManagerCreateVolumeRequest,
) -> CreateRequest:
    spec: scheduler_pb2.VolumeSpec = request.spec
    if not spec.volume_id:
        raise InvalidRequest("spec.volume_id is required")
    if not request.host:
        raise InvalidRequest("host is required")
    if spec.size_gb <= 0:
        raise InvalidRequest("spec.size_gb must be positive")
    return CreateRequest(
        volume_id=spec.volume_id,
        project_id=spec.project_id,
        size_gb=spec.size_gb,
        availability_zone=spec.availability_zone,
        volume_type=VolumeTypeRef(
            id=spec.volume_type.id,
            name=spec.volume_type.name,
            extra_specs=tuple(sorted(spec.volume_type.extra_specs.items())),
        ),
        host=request.host,
        retry=RetryState(
            num_attempts=request.retry.num_attempts,
            hosts=tuple(request.retry.hosts),
            last_error=request.retry.last_error,
        ),
        snapshot_id=spec.snapshot_id,
        source_volid=spec.source_volid,
    )


class VolumeManagerServicer(volume_manager_pb2_grpc.VolumeManagerServicer):
    def __init__(self, manager: Manager, capabilities: CapabilityPublisher | None = None) -> None:
        self._manager = manager
        self._capabilities = capabilities

    async def CreateVolume(
        self, request: volume_manager_pb2.ManagerCreateVolumeRequest, context: Context
    ) -> volume_manager_pb2.ManagerCreateVolumeResponse:
        try:
            await self._manager.accept_create(create_request_from_proto(request))
        except InvalidRequest as error:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(error))
        except VolumeManagerError as error:
            await context.abort(_status_of(error), error.message)
        return volume_manager_pb2.ManagerCreateVolumeResponse()

    async def DeleteVolume(
        self, request: volume_manager_pb2.ManagerDeleteVolumeRequest, context: Context
    ) -> volume_manager_pb2.ManagerDeleteVolumeResponse:
        if not request.volume_id:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "volume_id is required")
        try:
            await self._manager.accept_delete(request.volume_id)
        except VolumeManagerError as error:
            await context.abort(_status_of(error), error.message)
        return volume_manager_pb2.ManagerDeleteVolumeResponse()

    async def CreateSnapshot(
        self, request: volume_manager_pb2.ManagerCreateSnapshotRequest, context: Context
    ) -> volume_manager_pb2.ManagerCreateSnapshotResponse:
        work = self._manager.snapshots
        if work is None:
            await context.abort(grpc.StatusCode.UNIMPLEMENTED, "CreateSnapshot")
        if not request.snapshot_id:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "snapshot_id is required")
        try:
            await work.accept_create(request.snapshot_id)
        except VolumeManagerError as error:
            await context.abort(_status_of(error), error.message)
        return volume_manager_pb2.ManagerCreateSnapshotResponse()

    async def DeleteSnapshot(
        self, request: volume_manager_pb2.ManagerDeleteSnapshotRequest, context: Context
    ) -> volume_manager_pb2.ManagerDeleteSnapshotResponse:
        work = self._manager.snapshots
        if work is None:
            await context.abort(grpc.StatusCode.UNIMPLEMENTED, "DeleteSnapshot")
        if not request.snapshot_id:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "snapshot_id is required")
        try:
            await work.accept_delete(request.snapshot_id)
        except VolumeManagerError as error:
            await context.abort(_status_of(error), error.message)
        return volume_manager_pb2.ManagerDeleteSnapshotResponse()

    async def ExtendVolume(
        self, request: volume_manager_pb2.ManagerExtendVolumeRequest, context: Context
    ) -> volume_manager_pb2.ManagerExtendVolumeResponse:
        """The row says the target size; the request's is only checked to be given."""
        if not request.volume_id or request.new_size_gb <= 0:
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT, "volume_id and new_size_gb are required"
            )
        try:
            await self._manager.accept_extend(request.volume_id)
        except VolumeManagerError as error:
            await context.abort(_status_of(error), error.message)
        return volume_manager_pb2.ManagerExtendVolumeResponse()

    async def RevertVolumeToSnapshot(
        self, request: volume_manager_pb2.ManagerRevertVolumeRequest, context: Context
    ) -> volume_manager_pb2.ManagerRevertVolumeResponse:
        """The snapshot is the volume's one in ``restoring`` (the request names it)."""
        if not request.volume_id or not request.snapshot_id:
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT, "volume_id and snapshot_id are required"
            )
        try:
            await self._manager.accept_revert(request.volume_id)
        except VolumeManagerError as error:
            await context.abort(_status_of(error), error.message)
        return volume_manager_pb2.ManagerRevertVolumeResponse()

    async def InitializeConnection(
        self, request: volume_manager_pb2.ManagerInitializeConnectionRequest, context: Context
    ) -> volume_manager_pb2.ManagerInitializeConnectionResponse:
        connections = self._manager.connections
        if connections is None:
            await context.abort(grpc.StatusCode.UNIMPLEMENTED, "InitializeConnection")
        if not request.volume_id or not request.HasField("connector"):
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT, "volume_id and connector are required"
            )
        try:
            info = await connections.initialize(request.volume_id, _dict_of(request.connector))
        except VolumeManagerError as error:
            await context.abort(_status_of(error), error.message)
        return volume_manager_pb2.ManagerInitializeConnectionResponse(
            connection_info=_struct_of(info)
        )

    async def TerminateConnection(
        self, request: volume_manager_pb2.ManagerTerminateConnectionRequest, context: Context
    ) -> volume_manager_pb2.ManagerTerminateConnectionResponse:
        """An absent connector is a connection never made (``force`` still calls the driver)."""
        connections = self._manager.connections
        if connections is None:
            await context.abort(grpc.StatusCode.UNIMPLEMENTED, "TerminateConnection")
        if not request.volume_id:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "volume_id is required")
        connector = _dict_of(request.connector) if request.HasField("connector") else None
        try:
            await connections.terminate(request.volume_id, connector, request.force)
        except VolumeManagerError as error:
            await context.abort(_status_of(error), error.message)
        return volume_manager_pb2.ManagerTerminateConnectionResponse()

    async def MigrateVolume(
        self, request: volume_manager_pb2.ManagerMigrateVolumeRequest, context: Context
    ) -> volume_manager_pb2.ManagerMigrateVolumeResponse:
        """Accepts the migration of a volume the api marked ``retyping`` to this backend."""
        migrations = self._manager.migrations
        if migrations is None:
            await context.abort(grpc.StatusCode.UNIMPLEMENTED, "MigrateVolume")
        if not request.volume_id:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "volume_id is required")
        try:
            await migrations.accept(request.volume_id)
        except VolumeManagerError as error:
            await context.abort(_status_of(error), error.message)
        return volume_manager_pb2.ManagerMigrateVolumeResponse()

    async def ReadVolumeData(
        self, request: volume_manager_pb2.ReadVolumeDataRequest, context: Context
    ) -> AsyncIterator[volume_manager_pb2.VolumeDataChunk]:
        """The data of a volume being migrated away from this backend, chunk by chunk."""
        migrations = self._manager.migrations
        if migrations is None:
            await context.abort(grpc.StatusCode.UNIMPLEMENTED, "ReadVolumeData")
        if not request.volume_id:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "volume_id is required")
        try:
            chunks = await migrations.read(request.volume_id)
            async with contextlib.aclosing(chunks):
                async for chunk in chunks:
                    yield chunk
        except VolumeManagerError as error:
            await context.abort(_status_of(error), error.message)

    async def DeleteMigratedSource(
        self, request: volume_manager_pb2.DeleteMigratedSourceRequest, context: Context
    ) -> volume_manager_pb2.DeleteMigratedSourceResponse:
        """Removes this backend's image of a volume migrated elsewhere."""
        migrations = self._manager.migrations
        if migrations is None:
            await context.abort(grpc.StatusCode.UNIMPLEMENTED, "DeleteMigratedSource")
        if not request.volume_id:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "volume_id is required")
        try:
            await migrations.delete_source(request.volume_id)
        except VolumeManagerError as error:
            await context.abort(_status_of(error), error.message)
        return volume_manager_pb2.DeleteMigratedSourceResponse()

    async def WatchCapabilities(
        self, request: volume_manager_pb2.WatchCapabilitiesRequest, context: Context
    ) -> AsyncIterator[volume_manager_pb2.CapabilityReport]:
        """The publisher's reports, until the watcher hangs up or the manager stops."""
        if self._capabilities is None:
            await context.abort(grpc.StatusCode.UNIMPLEMENTED, "WatchCapabilities")
        async with contextlib.aclosing(self._capabilities.watch()) as reports:
            async for report in reports:
                yield report
