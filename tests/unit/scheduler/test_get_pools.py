"""GetPools: the pools of the backends that are up, as Cinder's get_pools shows them, over
real gRPC."""

from __future__ import annotations

import math

import grpc
from google.protobuf.json_format import MessageToDict

from cindermesh.db.engine import Database
from cindermesh_pb.scheduler.v1 import scheduler_pb2, scheduler_pb2_grpc
from services.scheduler.backend_state import BackendStates
from services.scheduler.manager_client import GrpcVolumeManagers
from services.scheduler.messages import pool_view_to_pb
from services.scheduler.scheduling import Scheduler, SchedulerConfig
from services.scheduler.servicer import SchedulerServicer

from .factories import backend_report, pool_report


def test_capabilities_as_cinder_shows_them() -> None:
    states = BackendStates()
    states.update(
        backend_report(
            pool_report(
                total_capacity_gb=math.inf, free_capacity_gb=math.nan, extra={"total_volumes": "3"}
            )
        ),
        stream=object(),
    )
    [view] = states.pool_views()
    info = pool_view_to_pb(view)
    capabilities = MessageToDict(info.capabilities)
    assert info.name == "node1@file-1#pool1"
    assert capabilities["total_capacity_gb"] == "infinite"
    assert capabilities["free_capacity_gb"] == "unknown"
    assert capabilities["total_volumes"] == 3
    assert capabilities["provisioned_capacity_gb"] == 0  # the allocated capacity stands in
    assert capabilities["QoS_support"] is False
    assert capabilities["filter_function"] is None
    assert capabilities["volume_backend_name"] == "file-1"
    assert capabilities["reserved_percentage"] == 0


async def test_get_pools_lists_the_backends_that_are_up(db: Database) -> None:
    clock = [0.0]
    states = BackendStates(lambda: clock[0], service_down_time=60.0)
    scheduler = Scheduler(states, db, GrpcVolumeManagers(), SchedulerConfig())
    server = grpc.aio.server()
    scheduler_pb2_grpc.add_SchedulerServicer_to_server(SchedulerServicer(scheduler), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    stub = scheduler_pb2_grpc.SchedulerStub(channel)
    try:
        assert list((await stub.GetPools(scheduler_pb2.GetPoolsRequest())).pools) == []
        stream = object()
        states.update(backend_report(), stream)
        states.update(backend_report(backend="node2@file-2"), stream)
        pools = (await stub.GetPools(scheduler_pb2.GetPoolsRequest())).pools
        assert [p.name for p in pools] == ["node1@file-1#pool1", "node2@file-2#pool1"]
        assert pools[0].capabilities.fields["allocated_capacity_gb"].number_value == 0
        states.remove("node1@file-1", stream)
        pools = (await stub.GetPools(scheduler_pb2.GetPoolsRequest())).pools
        assert [p.name for p in pools] == ["node2@file-2#pool1"]
        clock[0] = 61.0  # silent for longer than service_down_time: down, not shown
        assert list((await stub.GetPools(scheduler_pb2.GetPoolsRequest())).pools) == []
    finally:
        await channel.close()
        await server.stop(None)
        await scheduler.close()
