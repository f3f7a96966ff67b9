"""Wiring of one volume manager process (one backend): ``python -m services.volume``."""

from __future__ import annotations

import argparse
import asyncio
import logging

import grpc

from cindermesh.db.engine import open_database
from cindermesh.grpc_server import Drain, create_server, insecure_channel, serve_until_signal
from cindermesh.health import Health, database_dependency, storage_dependency
from cindermesh.settings import Settings, load_settings
from cindermesh.telemetry.logs import setup_logging
from cindermesh.telemetry.tracing import setup_tracing
from cindermesh_pb.volume.v1 import volume_manager_pb2_grpc
from services.volume.action_services import ActionServices
from services.volume.connections import Connections
from services.volume.create_flow import FlowServices
from services.volume.domain import backend_host
from services.volume.drivers import BlockStorageDriver, create_driver
from services.volume.drivers.base import BACKEND_DOWN
from services.volume.manager import Manager, ManagerTiming, new_worker_id
from services.volume.migrate_flow import MigrationServices
from services.volume.registration import ServiceRegistration
from services.volume.reporter import CapabilityPublisher
from services.volume.scheduler_client import CHANNEL_OPTIONS, SchedulerClient
from services.volume.servicer import SERVICE_NAME, VolumeManagerServicer
from services.volume.snapshot_flows import SnapshotServices

__all__ = ["main", "serve"]

SERVICE = "cindermesh-volume"

log = logging.getLogger(__name__)


async def serve(settings: Settings, backend_name: str) -> None:
    """Runs the volume manager of ``backend_name`` until SIGTERM or SIGINT."""
    backend = settings.backend(backend_name)
    provider = setup_tracing(SERVICE, settings.data_dir)
    setup_logging(SERVICE)
    db = open_database(settings)
    driver = create_driver(settings, backend)
    # Reschedules only; every scheduler replica, round robin over those that are up.
    channel = insecure_channel(settings.scheduler.grpc_target, CHANNEL_OPTIONS)
    try:
        await db.create_schema()
        await driver.do_setup()
        registration = ServiceRegistration(db, settings, backend)
        service_uuid = await registration.register()
        scheduler = SchedulerClient(channel)
        publisher = CapabilityPublisher(settings, backend, driver)
        host = backend_host(settings.host_name, backend.name)
        worker = new_worker_id(host)
        manager = Manager(
            FlowServices(
                db=db,
                driver=driver,
                scheduler=scheduler,
                worker=worker,
                service_uuid=service_uuid,
            ),
            host,
            on_capacity_change=publisher.request_report,
            timing=ManagerTiming(
                lease=settings.work.manager_lease, sweep_interval=settings.work.sweep_interval
            ),
            actions=ActionServices(db=db, driver=driver, worker=worker),
            snapshots=SnapshotServices(db=db, driver=driver, worker=worker, quotas=settings.quotas),
            connections=Connections(db, driver, host),
            migrations=MigrationServices(
                db=db, driver=driver, worker=worker, backend_host=host, service_uuid=service_uuid
            ),
        )

        def register(server: grpc.aio.Server) -> None:
            volume_manager_pb2_grpc.add_VolumeManagerServicer_to_server(
                VolumeManagerServicer(manager, publisher), server
            )

        async def storage_up() -> bool:
            # The capacity call the reports make: RBD's asks the cluster (``ceph df``).
            return (await driver.get_capacity()).backend_state != BACKEND_DOWN

        health_status = Health(
            [SERVICE_NAME], [database_dependency(db), storage_dependency(storage_up)]
        )
        server = create_server(register, health_status)
        registration.start()
        publisher.start()
        # Recovery needs the storage (it lists the images); a driver whose storage is down at
        # start reports the backend down meanwhile, and recovery runs once it is back.
        recovering = asyncio.create_task(_recover_when_up(driver, manager), name="recover")

        async def at_once() -> None:
            # Ends the schedulers' watches cleanly (they drop this backend at once), so that
            # they do not hold the server's stop; the creates in flight are still accepted.
            await publisher.stop()

        async def after_rpcs(remaining: float) -> None:
            recovering.cancel()
            await asyncio.gather(recovering, return_exceptions=True)
            # The driver calls in progress finish; past the grace period an interrupted
            # create stays ``creating`` on this backend, which the next start resumes.
            await manager.stop(remaining)
            await registration.stop()

        log.info(
            "volume manager for %s (%s), incarnation %s",
            backend.name,
            backend.driver.value,
            publisher.incarnation,
        )
        await serve_until_signal(
            server,
            settings.listen_address(backend.address),
            health_status,
            Drain(at_once=at_once, after_rpcs=after_rpcs),
            settings.work.drain_timeout,
        )
    finally:
        await channel.close(grace=None)
        await driver.close()
        await db.close()
        provider.shutdown()


async def _recover_when_up(driver: BlockStorageDriver, manager: Manager) -> None:
    try:
        await asyncio.wait_for(driver.wait_up(), timeout=0.05)
    except TimeoutError:
        log.warning("backend storage unreachable; recovery waits for it")
        await driver.wait_up()
    while True:
        try:
            await manager.recover()
            break
        except Exception as error:
            log.warning("recovery failed, trying again: %r", error)
            await asyncio.sleep(1.0)
            await driver.wait_up()
    manager.start_maintenance()


def main(argv: list[str] | None = None) -> None:
    settings = load_settings()
    parser = argparse.ArgumentParser(prog="python -m services.volume", description=__doc__)
    parser.add_argument(
        "--backend",
        default=settings.backends[0].name if settings.backends else None,
        help="backend to serve (default: the first configured one)",
    )
    args = parser.parse_args(argv)
    if args.backend is None:
        parser.error("no backend configured")
    asyncio.run(serve(settings, args.backend))
