"""One thin typed client method per remote call the api makes."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TypeVar

import grpc
from google.protobuf import struct_pb2
from google.protobuf.json_format import ParseDict
from google.protobuf.message import Message

from cindermesh.errors import (
    BackendFailed,
    BackendUnavailable,
    CindermeshError,
    InvalidInput,
    NotFound,
)
from cindermesh.grpc_server import insecure_channel
from cindermesh_pb.scheduler.v1 import scheduler_pb2, scheduler_pb2_grpc
from cindermesh_pb.volume.v1 import volume_manager_pb2, volume_manager_pb2_grpc
from services.api.schema import JsonValue, object_to_python

__all__ = ["SchedulerClient", "VolumeManagerClients"]

UNAVAILABLE_MESSAGE = "The server is currently unavailable. Please try again at a later time."
_TIMEOUT = 5.0
#: Seconds a connection call may take: RBD's asks the cluster for its monitors, which takes a
#: few seconds on a busy cluster.
_CONNECTION_TIMEOUT = 30.0
#: Cinder's REST answers (500) when the backend fails the connection calls.
INITIALIZE_FAILED_MESSAGE = "Unable to fetch connection information from backend."
TERMINATE_FAILED_MESSAGE = "Unable to terminate volume connection from backend."
_UNREACHABLE = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
#: Seconds a retried connection call waits for an unreachable manager to be back.
_RECONNECT_TIMEOUT = 3.0
#: Round robin over the scheduler replicas that are up and whose health says SERVING (gRPC's
#: client-side health checking: a replica draining, or without its database, gets no call).
_SCHEDULER_CONFIG = json.dumps(
    {
        "loadBalancingConfig": [{"round_robin": {}}],
        "healthCheckConfig": {"serviceName": ""},
    }
)
Request = TypeVar("Request", bound=Message)
Reply = TypeVar("Reply", bound=Message)


def _connection_error(error: grpc.aio.AioRpcError, failed_message: str) -> CindermeshError:
    """A connection call's failure: the manager unreachable (503), the connector refused
    (400), the volume unknown (404), else the backend failed (500, ``failed_message``; the
    manager's message is the ``reason``)."""
    code, details = error.code(), error.details() or ""
    if code in _UNREACHABLE:
        return BackendUnavailable(UNAVAILABLE_MESSAGE)
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        return InvalidInput(details)
    if code == grpc.StatusCode.NOT_FOUND:
        return NotFound(details)
    return BackendFailed(failed_message, details)


async def _idempotent(
    method: grpc.aio.UnaryUnaryMultiCallable[Request, Reply], request: Request
) -> Reply:
    """A call that changes nothing on the manager, retried once when the manager was
    unreachable, waiting (briefly) for it: a manager just restarted is reached although the
    channel was still backing off from its death."""
    try:
        return await method(request, timeout=_CONNECTION_TIMEOUT)
    except grpc.aio.AioRpcError as error:
        if error.code() != grpc.StatusCode.UNAVAILABLE:
            raise
    return await method(request, timeout=_RECONNECT_TIMEOUT, wait_for_ready=True)


def _struct_of(value: Mapping[str, JsonValue]) -> struct_pb2.Struct:
    return ParseDict(dict(value), struct_pb2.Struct())


class SchedulerClient:
    def __init__(self, target: str) -> None:
        """``target`` names every scheduler replica (``SchedulerSettings.grpc_target``): the
        calls go round robin to the replicas that are up."""
        self._channel = insecure_channel(target, [("grpc.service_config", _SCHEDULER_CONFIG)])
        self._stub = scheduler_pb2_grpc.SchedulerStub(self._channel)

    async def create_volume(self, spec: scheduler_pb2.VolumeSpec) -> None:
        """Hands the volume to the scheduler; returns once it has accepted it."""
        try:
            await self._stub.CreateVolume(
                scheduler_pb2.ScheduleVolumeRequest(spec=spec, retry=scheduler_pb2.RetryInfo()),
                timeout=_TIMEOUT,
            )
        except grpc.aio.AioRpcError as error:
            raise BackendUnavailable(UNAVAILABLE_MESSAGE) from error

    async def get_pools(self) -> list[scheduler_pb2.PoolInfo]:
        """The pools of the scheduler's live backend states."""
        try:
            response = await self._stub.GetPools(scheduler_pb2.GetPoolsRequest(), timeout=_TIMEOUT)
        except grpc.aio.AioRpcError as error:
            raise BackendUnavailable(UNAVAILABLE_MESSAGE) from error
        return list(response.pools)

    async def close(self, grace: float | None = None) -> None:
        """Closes the channel; the calls in flight have ``grace`` seconds to finish (None:
        none)."""
        await self._channel.close(grace)


class VolumeManagerClients:
    """Channels to volume managers, one per address, opened on first use."""

    def __init__(self) -> None:
        self._stubs: dict[str, volume_manager_pb2_grpc.VolumeManagerAsyncStub] = {}
        self._channels: list[grpc.aio.Channel] = []

    def _stub(self, address: str) -> volume_manager_pb2_grpc.VolumeManagerAsyncStub:
        if address not in self._stubs:
            channel = insecure_channel(address)
            self._channels.append(channel)
            self._stubs[address] = volume_manager_pb2_grpc.VolumeManagerStub(channel)
        return self._stubs[address]

    async def delete_volume(self, address: str, volume_id: str) -> None:
        """Hands a `deleting` volume to its manager; returns once it has accepted it."""
        try:
            await self._stub(address).DeleteVolume(
                volume_manager_pb2.ManagerDeleteVolumeRequest(volume_id=volume_id),
                timeout=_TIMEOUT,
            )
        except grpc.aio.AioRpcError as error:
            raise BackendUnavailable(UNAVAILABLE_MESSAGE) from error

    async def extend_volume(self, address: str, volume_id: str, new_size_gb: int) -> None:
        """Hands an `extending` volume to its manager; returns once it has accepted it."""
        try:
            await self._stub(address).ExtendVolume(
                volume_manager_pb2.ManagerExtendVolumeRequest(
                    volume_id=volume_id, new_size_gb=new_size_gb
                ),
                timeout=_TIMEOUT,
            )
        except grpc.aio.AioRpcError as error:
            raise BackendUnavailable(UNAVAILABLE_MESSAGE) from error

    async def revert_volume(self, address: str, volume_id: str, snapshot_id: str) -> None:
        """Hands a `reverting` volume to its manager; returns once it has accepted it."""
        try:
            await self._stub(address).RevertVolumeToSnapshot(
                volume_manager_pb2.ManagerRevertVolumeRequest(
                    volume_id=volume_id, snapshot_id=snapshot_id
                ),
                timeout=_TIMEOUT,
            )
        except grpc.aio.AioRpcError as error:
            raise BackendUnavailable(UNAVAILABLE_MESSAGE) from error

    async def migrate_volume(self, address: str, volume_id: str) -> None:
        """Hands a volume `retyping` to the destination's manager (at `address`); returns
        once it has accepted the migration."""
        try:
            await self._stub(address).MigrateVolume(
                volume_manager_pb2.ManagerMigrateVolumeRequest(volume_id=volume_id),
                timeout=_TIMEOUT,
            )
        except grpc.aio.AioRpcError as error:
            raise BackendUnavailable(UNAVAILABLE_MESSAGE) from error

    async def create_snapshot(self, address: str, snapshot_id: str) -> None:
        """Hands a `creating` snapshot to its volume's manager; returns once it has accepted
        it."""
        try:
            await self._stub(address).CreateSnapshot(
                volume_manager_pb2.ManagerCreateSnapshotRequest(snapshot_id=snapshot_id),
                timeout=_TIMEOUT,
            )
        except grpc.aio.AioRpcError as error:
            raise BackendUnavailable(UNAVAILABLE_MESSAGE) from error

    async def delete_snapshot(self, address: str, snapshot_id: str) -> None:
        """Hands a `deleting` snapshot to its volume's manager; returns once it has accepted
        it."""
        try:
            await self._stub(address).DeleteSnapshot(
                volume_manager_pb2.ManagerDeleteSnapshotRequest(snapshot_id=snapshot_id),
                timeout=_TIMEOUT,
            )
        except grpc.aio.AioRpcError as error:
            raise BackendUnavailable(UNAVAILABLE_MESSAGE) from error

    async def initialize_connection(
        self, address: str, volume_id: str, connector: Mapping[str, JsonValue]
    ) -> dict[str, JsonValue]:
        """Cinder's connection info (``driver_volume_type``, ``data``) of the volume for the
        host of ``connector``, with Cinder's JSON types (whole numbers are ints). Raises
        BackendUnavailable, InvalidInput (the connector), NotFound, or BackendFailed."""
        request = volume_manager_pb2.ManagerInitializeConnectionRequest(
            volume_id=volume_id, connector=_struct_of(connector)
        )
        try:
            response = await _idempotent(self._stub(address).InitializeConnection, request)
        except grpc.aio.AioRpcError as error:
            raise _connection_error(error, INITIALIZE_FAILED_MESSAGE) from error
        return object_to_python(response.connection_info)

    async def terminate_connection(
        self, address: str, volume_id: str, connector: Mapping[str, JsonValue] | None, force: bool
    ) -> None:
        """The host of ``connector`` no longer uses the volume; None: a connection never made
        (the backend is then left alone unless ``force``). Raises as
        ``initialize_connection``."""
        request = volume_manager_pb2.ManagerTerminateConnectionRequest(
            volume_id=volume_id, force=force
        )
        if connector is not None:
            request.connector.CopyFrom(_struct_of(connector))
        try:
            await _idempotent(self._stub(address).TerminateConnection, request)
        except grpc.aio.AioRpcError as error:
            raise _connection_error(error, TERMINATE_FAILED_MESSAGE) from error

    async def close(self) -> None:
        for channel in self._channels:
            await channel.close(None)
