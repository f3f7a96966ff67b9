"""Calls to the volume managers: one cached channel per address, one method per remote call.

A failed call is translated here, at the boundary: into :class:`BackendUnavailable` when the
manager could not be reached (worth trying again), into :class:`ManagerRefused` when it
answered no (the row says why; trying again would not help).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import grpc

from cindermesh.errors import BackendUnavailable, CindermeshError
from cindermesh.grpc_server import insecure_channel
from cindermesh_pb.volume.v1 import volume_manager_pb2_grpc
from services.scheduler.messages import manager_request_to_pb
from services.scheduler.spec import RetryState, VolumeSpec

__all__ = ["GrpcVolumeManagers", "ManagerRefused", "VolumeManagers"]

#: Answers that mean the manager was not reached, or not in a state to answer.
_UNREACHED = (
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.CANCELLED,
    grpc.StatusCode.UNKNOWN,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
)


class ManagerRefused(CindermeshError):
    """The manager answered that it will not create the volume (gone, or not its own)."""


class VolumeManagers(Protocol):
    """The volume managers as the scheduling flow needs them."""

    async def create_volume(
        self, address: str, spec: VolumeSpec, host: str, retry: RetryState
    ) -> None:
        """Hands a scheduled volume to the manager at ``address``; returns once it accepted.

        Raises BackendUnavailable if it could not be reached, ManagerRefused if it refused."""
        ...


class GrpcVolumeManagers:
    """:class:`VolumeManagers` over gRPC, one channel per address for the process's life."""

    def __init__(
        self,
        timeout: float = 5.0,
        channel_factory: Callable[[str], grpc.aio.Channel] = insecure_channel,
    ) -> None:
        self._timeout = timeout
        self._channel_factory = channel_factory
        self._stubs: dict[str, volume_manager_pb2_grpc.VolumeManagerAsyncStub] = {}
        self._channels: list[grpc.aio.Channel] = []

    def _stub(self, address: str) -> volume_manager_pb2_grpc.VolumeManagerAsyncStub:
        stub = self._stubs.get(address)
        if stub is None:
            channel = self._channel_factory(address)
            self._channels.append(channel)
            stub = self._stubs[address] = volume_manager_pb2_grpc.VolumeManagerStub(channel)
        return stub

    async def create_volume(
        self, address: str, spec: VolumeSpec, host: str, retry: RetryState
    ) -> None:
        request = manager_request_to_pb(spec, host, retry)
        try:
            await self._stub(address).CreateVolume(request, timeout=self._timeout)
        except grpc.aio.AioRpcError as error:
            message = (
                f"The volume manager of {host} at {address} did not accept the "
                f"volume: {error.code().name} {error.details() or ''}".rstrip()
            )
            if error.code() in _UNREACHED:
                raise BackendUnavailable(message) from error
            raise ManagerRefused(message) from error

    async def close(self) -> None:
        for channel in self._channels:
            await channel.close(None)
        self._channels.clear()
        self._stubs.clear()
