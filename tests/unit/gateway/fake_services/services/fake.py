"""Stand-ins for the real services in launcher tests: health, and a VolumeService for the api."""

from __future__ import annotations

import asyncio
import os
import signal

import grpc
from grpc_health.v1 import _async as health_aio
from grpc_health.v1 import health_pb2, health_pb2_grpc

from cindermesh_pb.api.v1 import volume_service_pb2 as pb
from cindermesh_pb.api.v1 import volume_service_pb2_grpc as pb_grpc


class Volumes(pb_grpc.VolumeServiceServicer):
    async def CreateVolume(self, request, context):
        return pb.VolumeResponse(volume=pb.Volume(id="v1", status="creating"))


async def serve(address: str, with_volumes: bool = False) -> None:
    server = grpc.aio.server()
    health_servicer = health_aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    await health_servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    if with_volumes:
        pb_grpc.add_VolumeServiceServicer_to_server(Volumes(), server)
    server.add_insecure_port(address)
    await server.start()
    print(f"fake serving on {address} pid {os.getpid()}", flush=True)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.stop(0)
