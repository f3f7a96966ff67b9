"""One thin typed client method per remote call the api makes."""

from __future__ import annotations

import grpc

from cindermesh.errors import BackendUnavailable
from cindermesh.grpc_server import insecure_channel
from cindermesh_pb.scheduler.v1 import scheduler_pb2, scheduler_pb2_grpc
from cindermesh_pb.volume.v1 import volume_manager_pb2, volume_manager_pb2_grpc

__all__ = ["SchedulerClient", "VolumeManagerClients"]

UNAVAILABLE_MESSAGE = "The server is currently unavailable. Please try again at a later time."
_TIMEOUT = 5.0


class SchedulerClient:
    def __init__(self, address: str) -> None:
        self._channel = insecure_channel(address)
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

    async def close(self) -> None:
        await self._channel.close(None)


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

    async def close(self) -> None:
        for channel in self._channels:
            await channel.close(None)
