"""BackendWatcher against real in-process VolumeManager gRPC servers (a fake servicer) and the
services table on real SQLite: discovery, reconnects, moved and removed rows, several
scheduler replicas."""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import AsyncIterator, Callable

import grpc
import pytest
from sqlmodel import delete

from cindermesh.db.engine import Database
from cindermesh.db.models import Service
from cindermesh.settings import SchedulerSettings
from cindermesh_pb.volume.v1 import volume_manager_pb2, volume_manager_pb2_grpc
from services.scheduler.backend_state import BackendStates
from services.scheduler.backend_watch import BACKOFF_MAX, BackendWatcher
from services.scheduler.messages import backend_report_from_pb

HOST = "node1@file-1"
POOL_ID = f"{HOST}#file-1"
SETTINGS = SchedulerSettings(discovery_interval=0.05)


def _report(
    backend: str = HOST, free: float = 100.0, sequence: int = 1, incarnation: str = "m-1"
) -> volume_manager_pb2.CapabilityReport:
    return volume_manager_pb2.CapabilityReport(
        backend=backend,
        volume_backend_name=backend.partition("@")[2],
        availability_zone="nova",
        pools=[
            volume_manager_pb2.PoolCapabilities(
                pool_name=backend.partition("@")[2],
                total_capacity_gb=volume_manager_pb2.Capacity(gb=100.0),
                free_capacity_gb=volume_manager_pb2.Capacity(gb=free),
                thin_provisioning_support=True,
                max_over_subscription_ratio=20.0,
            )
        ],
        manager_incarnation=incarnation,
        sequence=sequence,
    )


class FakeManager(volume_manager_pb2_grpc.VolumeManagerServicer):
    """Sends ``report`` at once and again on ``publish``; ends the stream on ``hang_up``."""

    def __init__(self, report: volume_manager_pb2.CapabilityReport) -> None:
        self.report = report
        self.watching = 0
        self.watches = 0
        self._changed = asyncio.Event()
        self._hang_up = asyncio.Event()

    def publish(self, report: volume_manager_pb2.CapabilityReport) -> None:
        self.report = report
        self._changed.set()  # wakes every stream; the next change is a new event
        self._changed = asyncio.Event()

    def hang_up(self) -> None:
        """Ends the streams open now."""
        self._hang_up.set()
        self._hang_up = asyncio.Event()

    async def WatchCapabilities(self, request, context):  # type: ignore[no-untyped-def]
        self.watching += 1
        self.watches += 1
        hang_up = self._hang_up
        try:
            yield self.report
            while not hang_up.is_set():
                changed = self._changed
                waits = {
                    asyncio.ensure_future(changed.wait()),
                    asyncio.ensure_future(hang_up.wait()),
                }
                try:
                    await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    for wait in waits:
                        wait.cancel()
                if changed.is_set() and not hang_up.is_set():
                    yield self.report
        finally:
            self.watching -= 1


class ManagerServer:
    """A VolumeManager server that can stop and start again on the same port."""

    def __init__(self, fake: FakeManager) -> None:
        self.fake = fake
        self.port = 0
        self._server: grpc.aio.Server | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def start(self) -> None:
        server = grpc.aio.server()
        volume_manager_pb2_grpc.add_VolumeManagerServicer_to_server(self.fake, server)
        self.port = server.add_insecure_port(f"127.0.0.1:{self.port}")
        await server.start()
        self._server = server

    async def stop(self) -> None:
        if self._server is not None:
            await self._server.stop(None)
            self._server = None


@pytest.fixture
async def manager() -> AsyncIterator[ManagerServer]:
    server = ManagerServer(FakeManager(_report()))
    await server.start()
    yield server
    await server.stop()


async def _set_address(db: Database, host: str, address: str) -> None:
    async with db.session() as session:
        row = await session.get(Service, host)
        if row is None:
            row = Service(host=host, address=address, availability_zone="nova")
        row.address = address
        session.add(row)


async def _until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


def _free(states: BackendStates, pool_id: str = POOL_ID) -> float | None:
    pool = states.pool(pool_id)
    return None if pool is None else pool.free_capacity_gb


@pytest.fixture
async def watched(
    db: Database, manager: ManagerServer
) -> AsyncIterator[tuple[BackendStates, BackendWatcher]]:
    await _set_address(db, HOST, manager.address)
    states = BackendStates()
    watcher = BackendWatcher(states, db, SETTINGS)
    yield states, watcher
    await watcher.stop()


async def test_a_started_watcher_knows_every_backend_at_once(
    watched: tuple[BackendStates, BackendWatcher],
    manager: ManagerServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    states, watcher = watched
    caplog.set_level(logging.INFO, "services.scheduler.backend_watch")
    loop = asyncio.get_running_loop()
    started = loop.time()
    watcher.start()
    await _until(lambda: states.pool(POOL_ID) is not None)
    # One read of the table and one round trip; no report interval to wait for.
    assert loop.time() - started < 1.0
    pool = states.pool(POOL_ID)
    assert pool is not None and pool.address == manager.address
    assert watcher.watched == {HOST: manager.address}
    assert f"capability stream of {HOST} open" in caplog.text

    manager.fake.publish(_report(free=60.0, sequence=2))
    await _until(lambda: _free(states) == 60.0)


async def test_every_replica_watches_every_manager(db: Database, manager: ManagerServer) -> None:
    await _set_address(db, HOST, manager.address)
    replicas = [BackendStates() for _ in range(3)]
    watchers = [BackendWatcher(states, db, SETTINGS) for states in replicas]
    for watcher in watchers:
        watcher.start()
    try:
        await _until(lambda: all(s.pool(POOL_ID) is not None for s in replicas))
        assert manager.fake.watching == 3
        manager.fake.publish(_report(free=42.0, sequence=2))
        await _until(lambda: all(_free(s) == 42.0 for s in replicas))
    finally:
        for watcher in watchers:
            await watcher.stop()
    await _until(lambda: manager.fake.watching == 0)


async def test_an_ended_stream_removes_the_backend_and_is_opened_again(
    watched: tuple[BackendStates, BackendWatcher],
    manager: ManagerServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    states, watcher = watched
    caplog.set_level(logging.INFO, "services.scheduler.backend_watch")
    watcher.start()
    await _until(lambda: states.pool(POOL_ID) is not None)

    await manager.stop()  # the manager died
    await _until(lambda: states.pool(POOL_ID) is None)
    assert f"capability stream of {HOST} ended" in caplog.text
    assert states.pools() == []

    manager.fake.report = _report(free=10.0, incarnation="m-2")
    loop = asyncio.get_running_loop()
    restarted = loop.time()
    await manager.start()  # restarted, same address
    await _until(lambda: _free(states) == 10.0)
    assert loop.time() - restarted < BACKOFF_MAX + 1.5


async def test_a_stream_closed_by_the_manager_is_opened_again(
    watched: tuple[BackendStates, BackendWatcher], manager: ManagerServer
) -> None:
    states, watcher = watched
    watcher.start()
    await _until(lambda: manager.fake.watches == 1 and states.pool(POOL_ID) is not None)
    manager.fake.hang_up()
    await _until(lambda: manager.fake.watches == 2 and states.pool(POOL_ID) is not None)


async def test_a_moved_backend_is_followed_to_its_new_address(
    db: Database, watched: tuple[BackendStates, BackendWatcher], manager: ManagerServer
) -> None:
    states, watcher = watched
    watcher.start()
    await _until(lambda: states.pool(POOL_ID) is not None)
    moved = ManagerServer(FakeManager(_report(free=5.0, incarnation="m-2")))
    await moved.start()
    try:
        await _set_address(db, HOST, moved.address)
        await _until(lambda: _free(states) == 5.0)
        pool = states.pool(POOL_ID)
        assert pool is not None and pool.address == moved.address
        assert watcher.watched == {HOST: moved.address}
        await _until(lambda: manager.fake.watching == 0)  # the old stream is closed
    finally:
        await watcher.stop()
        await moved.stop()


async def test_a_removed_row_closes_its_stream(
    db: Database, watched: tuple[BackendStates, BackendWatcher], manager: ManagerServer
) -> None:
    states, watcher = watched
    watcher.start()
    await _until(lambda: states.pool(POOL_ID) is not None)
    async with db.session() as session:
        await session.exec(delete(Service).where(Service.host == HOST))  # type: ignore[call-overload]
    await _until(lambda: states.pool(POOL_ID) is None and watcher.watched == {})
    await _until(lambda: manager.fake.watching == 0)


async def test_a_row_without_a_manager_is_retried_until_it_answers(
    db: Database, watched: tuple[BackendStates, BackendWatcher], manager: ManagerServer
) -> None:
    states, watcher = watched
    late = ManagerServer(FakeManager(_report(backend="node2@file-2")))
    await late.start()
    address = late.address
    await late.stop()  # registered, not up yet
    await _set_address(db, "node2@file-2", address)
    watcher.start()
    await _until(lambda: states.pool(POOL_ID) is not None)  # the others are not held up
    await asyncio.sleep(0.3)
    assert states.pool("node2@file-2#file-2") is None
    await late.start()
    try:
        await _until(lambda: states.pool("node2@file-2#file-2") is not None)
    finally:
        await watcher.stop()
        await late.stop()


async def test_a_manager_reporting_another_backend_is_not_taken(
    db: Database, watched: tuple[BackendStates, BackendWatcher], manager: ManagerServer
) -> None:
    states, watcher = watched
    manager.fake.report = _report(backend="node9@file-9")
    watcher.start()
    await _until(lambda: manager.fake.watches >= 2)  # refused, tried again
    assert states.pools() == []
    assert states.backends() == []


async def test_stop_closes_every_stream_and_forgets_the_backends(
    watched: tuple[BackendStates, BackendWatcher], manager: ManagerServer
) -> None:
    states, watcher = watched
    watcher.start()
    await _until(lambda: states.pool(POOL_ID) is not None)
    await watcher.stop()
    assert states.pools() == [] and watcher.watched == {}
    await _until(lambda: manager.fake.watching == 0)


async def test_a_table_that_cannot_be_read_is_read_again(
    db: Database, manager: ManagerServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _set_address(db, HOST, manager.address)
    states = BackendStates()
    watcher = BackendWatcher(states, db, SETTINGS)
    real = watcher.discover
    failures = [RuntimeError("database is locked")]

    async def discover() -> None:
        if failures:
            raise failures.pop()
        await real()

    monkeypatch.setattr(watcher, "discover", discover)
    watcher.start()
    try:
        await _until(lambda: states.pool(POOL_ID) is not None)
    finally:
        await watcher.stop()


def test_report_from_the_contract() -> None:
    report = _report(sequence=7, incarnation="m-3")
    pool = report.pools[0]
    pool.total_capacity_gb.CopyFrom(
        volume_manager_pb2.Capacity(unbounded=volume_manager_pb2.INFINITE)
    )
    pool.free_capacity_gb.CopyFrom(
        volume_manager_pb2.Capacity(unbounded=volume_manager_pb2.UNKNOWN)
    )
    pool.max_over_subscription_ratio_auto = True
    pool.allocated_capacity_gb = 3.0
    parsed = backend_report_from_pb(report, "127.0.0.1:9")
    (pool_report,) = parsed.pools
    assert math.isinf(pool_report.total_capacity_gb)
    assert math.isnan(pool_report.free_capacity_gb)
    assert pool_report.max_over_subscription_ratio_auto
    assert (parsed.address, parsed.incarnation, parsed.sequence) == ("127.0.0.1:9", "m-3", 7)
    # An unset capacity is Cinder's default for a key left out: 0.
    pool.ClearField("total_capacity_gb")
    assert backend_report_from_pb(report, "x").pools[0].total_capacity_gb == 0.0
    # An unbounded value left unspecified cannot be stated either: unknown.
    pool.total_capacity_gb.unbounded = volume_manager_pb2.UNBOUNDED_UNSPECIFIED
    assert math.isnan(backend_report_from_pb(report, "x").pools[0].total_capacity_gb)
