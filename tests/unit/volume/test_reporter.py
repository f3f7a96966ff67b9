"""The capability publisher: every watcher gets the latest report at once, then each new one;
a slow watcher holds only the latest; served over real gRPC by WatchCapabilities."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import math
from collections.abc import AsyncGenerator, AsyncIterator, Callable

import grpc
import pytest

from cindermesh.settings import Settings
from cindermesh_pb.volume.v1 import volume_manager_pb2, volume_manager_pb2_grpc
from services.volume.drivers.base import CapacityStats
from services.volume.manager import Manager
from services.volume.reporter import CapabilityPublisher, build_report, capacity_to_pb
from services.volume.servicer import VolumeManagerServicer

from .helpers import BACKEND, BACKEND_HOST, FakeDriver

Reports = AsyncGenerator[volume_manager_pb2.CapabilityReport, None]


@pytest.fixture
async def publisher(settings: Settings, driver: FakeDriver) -> AsyncIterator[CapabilityPublisher]:
    published = CapabilityPublisher(settings, settings.backend(BACKEND), driver, "incarnation-1")
    published.start()
    yield published
    await published.stop()


async def _next(reports: Reports, timeout: float = 2.0) -> volume_manager_pb2.CapabilityReport:
    async with asyncio.timeout(timeout):
        return await anext(reports)


async def _until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


async def test_a_watcher_gets_the_current_report_then_each_new_one(
    publisher: CapabilityPublisher, driver: FakeDriver
) -> None:
    async with contextlib.aclosing(publisher.watch()) as reports:
        first = await _next(reports)
        assert first.backend == BACKEND_HOST
        assert [p.pool_name for p in first.pools] == [BACKEND]
        assert first.pools[0].allocated_capacity_gb == 0
        assert first.pools[0].total_capacity_gb.gb == 100
        assert (first.manager_incarnation, first.sequence) == ("incarnation-1", 1)
        driver.volumes["v"] = 7
        publisher.request_report()
        report = await _next(reports, timeout=1.0)
        assert report.pools[0].allocated_capacity_gb == 7
        assert report.pools[0].extra["total_volumes"] == "1"
        assert report.sequence > first.sequence
        periodic = await _next(reports, timeout=1.0)  # report_interval is 0.2 s
        assert periodic.sequence > report.sequence
        assert periodic.manager_incarnation == "incarnation-1"


async def test_a_change_of_the_drivers_numbers_is_published_without_a_request(
    settings: Settings, driver: FakeDriver
) -> None:
    """A Ceph pool's usage changes without us: polled every CHANGE_POLL seconds."""
    backend = dataclasses.replace(settings.backend(BACKEND), report_interval=60.0)
    slow = CapabilityPublisher(settings, backend, driver)
    slow.start()
    try:
        async with contextlib.aclosing(slow.watch()) as reports:
            await _next(reports)
            driver.volumes["outside"] = 3
            report = await _next(reports, timeout=3.0)
            assert report.pools[0].allocated_capacity_gb == 3
    finally:
        await slow.stop()


async def test_every_watcher_gets_the_same_numbered_reports(
    publisher: CapabilityPublisher,
) -> None:
    async with (
        contextlib.aclosing(publisher.watch()) as one,
        contextlib.aclosing(publisher.watch()) as two,
    ):
        a, b = await _next(one), await _next(two)
        assert (a.sequence, a.manager_incarnation) == (b.sequence, b.manager_incarnation)
        assert publisher.watchers == 2
        publisher.request_report()
        a, b = await _next(one), await _next(two)
        assert a.sequence == b.sequence
        # A watcher that comes later gets the latest report at once.
        async with contextlib.aclosing(publisher.watch()) as late:
            latest = publisher.latest
            assert latest is not None
            assert (await _next(late, timeout=0.1)).sequence >= latest.sequence
    assert publisher.watchers == 0


async def test_a_slow_watcher_holds_only_the_latest_report(
    publisher: CapabilityPublisher, driver: FakeDriver
) -> None:
    async with (
        contextlib.aclosing(publisher.watch()) as slow,
        contextlib.aclosing(publisher.watch()) as fast,
    ):
        first = await _next(slow)
        await _next(fast)
        seen = []
        for size in range(1, 4):
            driver.volumes[f"v{size}"] = size
            publisher.request_report()
            seen.append((await _next(fast)).sequence)
        # The publisher and the other watcher went on without the slow one ...
        assert publisher.published >= first.sequence + 3
        # ... which now gets the latest report only, not the ones it missed.
        report = await _next(slow, timeout=0.1)
        latest = publisher.latest
        assert latest is not None and report.sequence == latest.sequence
        assert report.pools[0].allocated_capacity_gb == 6


async def test_stop_ends_every_watch(settings: Settings, driver: FakeDriver) -> None:
    publisher = CapabilityPublisher(settings, settings.backend(BACKEND), driver)
    publisher.start()
    reports = publisher.watch()
    await _next(reports)
    await publisher.stop()
    with pytest.raises(StopAsyncIteration):
        await _next(reports)
    assert publisher.watchers == 0
    assert [r async for r in publisher.watch()] == []  # a watch after the stop ends at once


async def test_a_driver_that_fails_to_give_its_capacity_is_asked_again(
    settings: Settings, driver: FakeDriver, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = 0
    real = driver.get_capacity

    async def flaky() -> CapacityStats:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("storage not there yet")
        return await real()

    monkeypatch.setattr(driver, "get_capacity", flaky)
    monkeypatch.setattr("services.volume.reporter.RETRY_AFTER_FAILURE", 0.01)
    publisher = CapabilityPublisher(settings, settings.backend(BACKEND), driver)
    publisher.start()
    try:
        async with contextlib.aclosing(publisher.watch()) as reports:
            assert (await _next(reports)).sequence == 1
        assert calls >= 2
    finally:
        await publisher.stop()


def test_unbounded_capacities_are_typed() -> None:
    assert capacity_to_pb(math.inf).unbounded == volume_manager_pb2.INFINITE
    assert capacity_to_pb(math.nan).unbounded == volume_manager_pb2.UNKNOWN
    bounded = capacity_to_pb(12.5)
    assert (bounded.WhichOneof("value"), bounded.gb) == ("gb", 12.5)
    assert capacity_to_pb(0.0).WhichOneof("value") == "gb"  # 0 is a number, not unset


async def test_report_of_a_driver_with_unbounded_capacity(
    settings: Settings, driver: FakeDriver, monkeypatch: pytest.MonkeyPatch
) -> None:
    stats = await driver.get_capacity()
    unbounded = CapacityStats(
        **{**stats.__dict__, "total_capacity_gb": math.inf, "free_capacity_gb": math.nan}
    )

    async def get_capacity() -> CapacityStats:
        return unbounded

    monkeypatch.setattr(driver, "get_capacity", get_capacity)
    report = await build_report(settings, settings.backend(BACKEND), driver)
    (pool,) = report.pools
    assert pool.total_capacity_gb.unbounded == volume_manager_pb2.INFINITE
    assert pool.free_capacity_gb.unbounded == volume_manager_pb2.UNKNOWN
    assert not pool.max_over_subscription_ratio_auto


async def test_watch_capabilities_over_grpc(
    settings: Settings, driver: FakeDriver, manager: Manager
) -> None:
    publisher = CapabilityPublisher(settings, settings.backend(BACKEND), driver, "m-1")
    publisher.start()
    server = grpc.aio.server()
    volume_manager_pb2_grpc.add_VolumeManagerServicer_to_server(
        VolumeManagerServicer(manager, publisher), server
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = volume_manager_pb2_grpc.VolumeManagerStub(channel)
            request = volume_manager_pb2.WatchCapabilitiesRequest()
            kept, dropped = stub.WatchCapabilities(request), stub.WatchCapabilities(request)
            first = await asyncio.wait_for(kept.read(), 2.0)
            assert isinstance(first, volume_manager_pb2.CapabilityReport)
            assert (first.backend, first.manager_incarnation) == (BACKEND_HOST, "m-1")
            await asyncio.wait_for(dropped.read(), 2.0)
            await _until(lambda: publisher.watchers == 2)
            dropped.cancel()  # a scheduler that goes away leaves no watcher behind
            await _until(lambda: publisher.watchers == 1)
            publisher.request_report()
            second = await asyncio.wait_for(kept.read(), 2.0)
            assert isinstance(second, volume_manager_pb2.CapabilityReport)
            assert second.sequence > first.sequence
            await publisher.stop()  # the manager stops: the watch ends cleanly
            async with asyncio.timeout(2.0):
                while await kept.read() is not grpc.aio.EOF:
                    pass
            assert await kept.code() == grpc.StatusCode.OK
    finally:
        await publisher.stop()
        await server.stop(None)


async def test_watch_without_a_publisher_is_unimplemented(manager: Manager) -> None:
    server = grpc.aio.server()
    volume_manager_pb2_grpc.add_VolumeManagerServicer_to_server(
        VolumeManagerServicer(manager), server
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = volume_manager_pb2_grpc.VolumeManagerStub(channel)
            call = stub.WatchCapabilities(volume_manager_pb2.WatchCapabilitiesRequest())
            with pytest.raises(grpc.aio.AioRpcError) as raised:
                await call.read()
            assert raised.value.code() == grpc.StatusCode.UNIMPLEMENTED
    finally:
        await server.stop(None)
