"""The scheduler process: explicit wiring of settings, tracing, database, state and server."""

from __future__ import annotations

import argparse
import asyncio

import grpc

from cindermesh.db.engine import open_database
from cindermesh.grpc_server import Drain, create_server, serve_until_signal
from cindermesh.health import Health, database_dependency
from cindermesh.settings import Settings, configured_replica, load_settings
from cindermesh.telemetry.logs import setup_logging
from cindermesh.telemetry.tracing import setup_tracing
from cindermesh_pb.scheduler.v1 import scheduler_pb2, scheduler_pb2_grpc
from services.scheduler import registry
from services.scheduler.backend_state import BackendStates
from services.scheduler.backend_watch import BackendWatcher
from services.scheduler.manager_client import GrpcVolumeManagers
from services.scheduler.scheduling import Scheduler, SchedulerConfig
from services.scheduler.servicer import SchedulerServicer
from services.scheduler.sweep import Sweep

__all__ = ["SERVICE_NAME", "main", "serve"]

SERVICE_NAME = "cindermesh-scheduler"


def _config(settings: Settings, name: str) -> SchedulerConfig:
    """The scheduler's settings; the filters, weighers and weight handler by name (an unknown
    name stops the start, naming the valid ones)."""
    scheduler = settings.scheduler
    if scheduler.scheduler_max_attempts < 1:
        raise ValueError("scheduler_max_attempts must be at least 1")
    filters, weighers, handler = registry.from_settings(scheduler)
    return SchedulerConfig(
        max_attempts=scheduler.scheduler_max_attempts,
        handoff_timeout=settings.work.handoff_timeout,
        placement_timeout=settings.work.placement_timeout,
        filters=filters,
        weighers=weighers,
        weight_handler=handler,
        name=name,
    )


def _address(settings: Settings, replica: int) -> str:
    replicas = settings.scheduler.replicas
    return settings.scheduler.address(configured_replica("scheduler", replica, replicas))


async def serve(settings: Settings, replica: int = 0) -> None:
    """Runs scheduler replica ``replica`` on ``settings.scheduler.address(replica)`` until
    SIGTERM or SIGINT."""
    address = _address(settings, replica)
    config = _config(settings, address)
    provider = setup_tracing(SERVICE_NAME, settings.data_dir)
    setup_logging(SERVICE_NAME)
    db = open_database(settings)
    await db.create_schema()
    managers = GrpcVolumeManagers()
    states = BackendStates(service_down_time=settings.scheduler.service_down_time)
    watcher = BackendWatcher(states, db, settings.scheduler)
    scheduler = Scheduler(states, db, managers, config)
    sweep = Sweep(scheduler, db, settings.work)
    service_name = scheduler_pb2.DESCRIPTOR.services_by_name["Scheduler"].full_name

    def register(server: grpc.aio.Server) -> None:
        scheduler_pb2_grpc.add_SchedulerServicer_to_server(SchedulerServicer(scheduler), server)

    health_status = Health([service_name], [database_dependency(db)])
    server = create_server(register, health_status)
    watcher.start()
    sweep.start()

    async def at_once() -> None:
        # No new placements: the sweep takes no more work (nor do RPCs, refused now).
        await sweep.stop()

    async def after_rpcs(remaining: float) -> None:
        # The placements in progress finish with the backends' states (so the watches end
        # after them); one still waiting for its manager then stays in the database, placed
        # or not, for another replica (its sweep) or the manager's own.
        await scheduler.close(remaining)
        await watcher.stop()
        await managers.close()

    try:
        await serve_until_signal(
            server,
            settings.listen_address(address),
            health_status,
            Drain(at_once=at_once, after_rpcs=after_rpcs),
            settings.work.drain_timeout,
        )
    finally:
        await db.close()
        provider.shutdown()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m services.scheduler", description=__doc__)
    parser.add_argument(
        "--replica", type=int, default=0, help="replica to run, 0-based (default: 0)"
    )
    args = parser.parse_args(argv)
    asyncio.run(serve(load_settings(), args.replica))
