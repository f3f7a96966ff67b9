"""Fixtures: a real database (SQLite, then PostgreSQL), a fake driver and a fake in-process
Scheduler."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from cindermesh.db.engine import Database, open_database
from cindermesh.grpc_server import insecure_channel
from cindermesh.settings import Settings
from services.volume.create_flow import FlowServices
from services.volume.manager import Manager
from services.volume.scheduler_client import SchedulerClient

from .helpers import (
    BACKEND,
    HOST_NAME,
    WORKER,
    FakeDriver,
    FakeScheduler,
    make_settings,
    start_fake_scheduler,
)


@pytest.fixture
async def scheduler() -> AsyncIterator[tuple[FakeScheduler, int]]:
    server, fake, port = await start_fake_scheduler()
    yield fake, port
    await server.stop(None)


@pytest.fixture
def settings(
    tmp_path: Path, scheduler: tuple[FakeScheduler, int], migrated_database_url: str
) -> Settings:
    """The manager's settings, on a real database: SQLite, then PostgreSQL."""
    return dataclasses.replace(
        make_settings(tmp_path, scheduler[1]), database_url=migrated_database_url
    )


@pytest.fixture
async def db(settings: Settings) -> AsyncIterator[Database]:
    database = open_database(settings)
    await database.create_schema()
    yield database
    await database.close()


@pytest.fixture
def driver() -> FakeDriver:
    return FakeDriver()


@pytest.fixture
async def scheduler_client(settings: Settings) -> AsyncIterator[SchedulerClient]:
    channel = insecure_channel(f"{settings.scheduler.host}:{settings.scheduler.port}")
    yield SchedulerClient(channel)
    await channel.close(None)


@pytest.fixture
def services(db: Database, driver: FakeDriver, scheduler_client: SchedulerClient) -> FlowServices:
    return FlowServices(
        db=db,
        driver=driver,
        scheduler=scheduler_client,
        worker=WORKER,
        service_uuid="service-uuid-1",
    )


@pytest.fixture
def manager(services: FlowServices) -> Manager:
    return Manager(services, f"{HOST_NAME}@{BACKEND}")
