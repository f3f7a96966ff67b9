"""cindermesh.health: the status follows a (fake) dependency, over a real gRPC server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from cindermesh.health import Dependency, DependencyDown, Health, storage_dependency
from cindermesh_pb.scheduler.v1 import scheduler_pb2, scheduler_pb2_grpc
from services.api.clients import SchedulerClient

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
SERVICE = "cindermesh.test.v1.Thing"


class FakeDependency:
    """Up or down as the test says; ``hang`` makes its probe wait for ``released``."""

    def __init__(self) -> None:
        self.up = True
        self.hang = False
        self.released = asyncio.Event()
        self.probes = 0

    async def probe(self) -> None:
        self.probes += 1
        if self.hang:
            await self.released.wait()
        if not self.up:
            raise DependencyDown("fake dependency down")


@pytest.fixture
async def served() -> AsyncIterator[tuple[Health, FakeDependency, health_pb2_grpc.HealthStub]]:
    fake = FakeDependency()
    health_status = Health([SERVICE], [Dependency("fake", fake.probe)], interval=0.01, timeout=0.05)
    server = grpc.aio.server()
    health_status.register(server)
    port = server.add_insecure_port("127.0.0.1:0")
    await health_status.start()
    await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield health_status, fake, health_pb2_grpc.HealthStub(channel)
    finally:
        await health_status.stop()
        await channel.close(None)
        await server.stop(None)


async def _status(stub: health_pb2_grpc.HealthStub, service: str = "") -> int:
    reply = await stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
    return int(reply.status)


async def _until(stub: health_pb2_grpc.HealthStub, wanted: int) -> None:
    """Waits (no time asserted) for both the server's and the service's status to be
    ``wanted``, by their Watch streams."""
    for service in ("", SERVICE):
        async for reply in stub.Watch(health_pb2.HealthCheckRequest(service=service)):
            if reply.status == wanted:
                break


async def test_the_first_answer_is_the_first_probe(
    served: tuple[Health, FakeDependency, health_pb2_grpc.HealthStub],
) -> None:
    health_status, fake, stub = served
    assert fake.probes >= 1
    assert await _status(stub) == SERVING
    assert await _status(stub, SERVICE) == SERVING
    assert health_status.serving and health_status.down == {}


async def test_a_dependency_down_is_not_serving_and_back_is_serving(
    served: tuple[Health, FakeDependency, health_pb2_grpc.HealthStub],
) -> None:
    health_status, fake, stub = served
    fake.up = False
    await _until(stub, NOT_SERVING)
    assert not health_status.serving
    assert health_status.down == {"fake": "fake dependency down"}
    fake.up = True
    await _until(stub, SERVING)
    assert health_status.serving and health_status.down == {}


async def test_a_probe_that_never_answers_is_a_dependency_down(
    served: tuple[Health, FakeDependency, health_pb2_grpc.HealthStub],
) -> None:
    health_status, fake, stub = served
    fake.hang = True
    await _until(stub, NOT_SERVING)
    assert "no answer within" in health_status.down["fake"]


async def test_drain_is_not_serving_for_good(
    served: tuple[Health, FakeDependency, health_pb2_grpc.HealthStub],
) -> None:
    health_status, fake, stub = served
    await health_status.drain()
    assert await _status(stub) == NOT_SERVING
    assert await _status(stub, SERVICE) == NOT_SERVING
    probes = fake.probes
    assert await health_status.check()  # the dependency is up, the service still drains
    assert await _status(stub) == NOT_SERVING
    assert not health_status.serving
    assert fake.probes == probes + 1


async def test_stop_while_a_probe_hangs_ends_the_probing() -> None:
    fake = FakeDependency()
    health_status = Health([SERVICE], [Dependency("fake", fake.probe)], interval=0.01, timeout=60)
    await health_status.start()
    fake.hang = True
    while fake.probes < 2:
        await asyncio.sleep(0.01)
    await health_status.stop()  # cancels the hanging probe
    probes = fake.probes
    fake.released.set()  # a probe not cancelled would now return, and the next ones run
    await asyncio.sleep(0.05)
    assert fake.probes == probes


async def test_storage_dependency_follows_the_drivers_answer() -> None:
    up = True

    async def is_up() -> bool:
        return up

    dependency = storage_dependency(is_up)
    await dependency.probe()
    up = False
    with pytest.raises(DependencyDown):
        await dependency.probe()


class _CountingScheduler(scheduler_pb2_grpc.SchedulerServicer):
    def __init__(self) -> None:
        self.calls = 0

    async def GetPools(
        self, request: scheduler_pb2.GetPoolsRequest, context: grpc.aio.ServicerContext
    ) -> scheduler_pb2.GetPoolsResponse:
        self.calls += 1
        return scheduler_pb2.GetPoolsResponse()


async def test_the_apis_scheduler_client_skips_a_replica_that_is_not_serving() -> None:
    replicas = [_CountingScheduler(), _CountingScheduler()]
    fakes = [FakeDependency(), FakeDependency()]
    fakes[1].up = False
    servers: list[tuple[grpc.aio.Server, Health]] = []
    addresses = []
    for replica, fake in zip(replicas, fakes, strict=True):
        health_status = Health([SERVICE], [Dependency("fake", fake.probe)], interval=0.01)
        server = grpc.aio.server()
        scheduler_pb2_grpc.add_SchedulerServicer_to_server(replica, server)
        health_status.register(server)
        addresses.append(f"127.0.0.1:{server.add_insecure_port('127.0.0.1:0')}")
        await health_status.start()
        await server.start()
        servers.append((server, health_status))
    client = SchedulerClient("ipv4:" + ",".join(addresses))
    try:
        for _ in range(20):
            await client.get_pools()
        assert [r.calls for r in replicas] == [20, 0]
        fakes[1].up = True
        while replicas[1].calls == 0:  # round robin again once its health says SERVING
            await client.get_pools()
    finally:
        await client.close()
        for server, health_status in servers:
            await health_status.stop()
            await server.stop(None)
