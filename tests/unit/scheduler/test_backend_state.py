import datetime as dt
import math

import pytest

from services.scheduler.backend_state import BackendStates, consume_from_volume

from .factories import T0, backend_report, pool, pool_report

LATER = T0 + dt.timedelta(seconds=5)


@pytest.mark.parametrize(
    ("free", "size", "expected_free"),
    [(100.0, 10, 90.0), (5.0, 10, -5.0), (50.0, -10, 60.0), (math.inf, 10, math.inf)],
)
def test_consume_from_volume(free: float, size: int, expected_free: float) -> None:
    before = pool(free_capacity_gb=free, allocated_capacity_gb=20.0, provisioned_capacity_gb=30.0)
    after = consume_from_volume(before, size, LATER)
    assert after.free_capacity_gb == expected_free
    assert after.allocated_capacity_gb == 20.0 + size
    assert after.provisioned_capacity_gb == 30.0 + size
    assert (after.total_capacity_gb, after.reserved_percentage) == (100.0, 0)
    assert after.updated == LATER


def test_consume_unknown_free_stays_unknown_and_give_back_keeps_time() -> None:
    after = consume_from_volume(pool(free_capacity_gb=math.nan), -10, None)
    assert math.isnan(after.free_capacity_gb)
    assert after.updated == pool().updated


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> dt.datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def states(clock: Clock) -> BackendStates:
    return BackendStates(clock)


STREAM = object()


def test_report_makes_pools(states: BackendStates) -> None:
    assert states.update(backend_report(pool_report(allocated_capacity_gb=7.0)), STREAM)
    (state,) = states.pools()
    assert state.pool_id == "node1@file-1#pool1"
    assert state.provisioned_capacity_gb == 7.0  # falls back to allocated
    assert state.max_over_subscription_ratio == 20.0
    assert state.capabilities["volume_backend_name"] == "file-1"
    assert states.first_report.is_set()


@pytest.mark.parametrize(
    ("changes", "ratio"),
    [
        (dict(max_over_subscription_ratio=5.0), 5.0),
        (dict(max_over_subscription_ratio=0.0), 20.0),
        (dict(thin_provisioning_support=False, max_over_subscription_ratio=5.0), 1.0),
        (dict(free_capacity_gb=math.inf, max_over_subscription_ratio=5.0), 1.0),
    ],
)
def test_effective_over_subscription_ratio(
    states: BackendStates, changes: dict[str, object], ratio: float
) -> None:
    states.update(backend_report(pool_report(**changes)), STREAM)
    assert states.pools()[0].max_over_subscription_ratio == ratio


def test_report_before_consumption_keeps_consumed_numbers(
    states: BackendStates, clock: Clock
) -> None:
    states.update(backend_report(timestamp=T0), STREAM)
    clock.now = T0 + dt.timedelta(seconds=10)
    states.consume("node1@file-1#pool1", 30)
    stale = pool_report(free_capacity_gb=100.0, extra={"color": "blue"})
    states.update(backend_report(stale, timestamp=T0 + dt.timedelta(seconds=5)), STREAM)
    state = states.pools()[0]
    assert (state.free_capacity_gb, state.allocated_capacity_gb) == (70.0, 30.0)
    assert state.capabilities["color"] == "blue"  # capabilities are always replaced
    fresh = pool_report(free_capacity_gb=71.0, allocated_capacity_gb=29.0)
    states.update(backend_report(fresh, timestamp=T0 + dt.timedelta(seconds=10)), STREAM)
    state = states.pools()[0]
    assert (state.free_capacity_gb, state.allocated_capacity_gb) == (71.0, 29.0)


def test_report_older_than_last_one_is_ignored(states: BackendStates) -> None:
    states.update(backend_report(pool_report(free_capacity_gb=50.0), timestamp=LATER), STREAM)
    assert not states.update(backend_report(timestamp=T0), STREAM)
    assert states.pools()[0].free_capacity_gb == 50.0


def test_pool_missing_from_report_is_removed(states: BackendStates) -> None:
    states.update(backend_report(pool_report(), pool_report(pool_name="pool2")), STREAM)
    assert len(states.pools()) == 2
    states.update(backend_report(pool_report(pool_name="pool2")), STREAM)
    assert [p.pool_id for p in states.pools()] == ["node1@file-1#pool2"]


def test_stream_end_removes_only_its_backend(states: BackendStates) -> None:
    old, new = object(), object()
    states.update(backend_report(), old)
    states.update(backend_report(backend="node2@file-2"), old)
    states.update(backend_report(), new)  # node1 reconnected on a new stream
    states.remove("node1@file-1", old)
    states.remove("node2@file-2", old)
    assert [p.pool_id for p in states.pools()] == ["node1@file-1#pool1"]
    states.remove("node1@file-1", new)
    assert states.pools() == []


def test_consume_unknown_pool(states: BackendStates) -> None:
    assert not states.consume("nowhere@x#y", 1)


def test_pool_views_show_reported_numbers(states: BackendStates) -> None:
    states.update(backend_report(pool_report(free_capacity_gb=80.0)), STREAM)
    states.consume("node1@file-1#pool1", 30)
    (view,) = states.pool_views()
    assert view.name == "node1@file-1#pool1"
    assert view.capabilities["free_capacity_gb"] == 80.0
    assert view.capabilities["timestamp"] == T0.isoformat()
