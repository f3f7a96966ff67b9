"""BackendStates: reports ordered by incarnation and sequence, aged on the scheduler's own
monotonic clock, pools replaced and removed as Cinder's HostManager does."""

import datetime as dt
import math

import pytest

from services.scheduler.backend_state import BackendStates

from .factories import T0, backend_report, pool_report

DOWN_TIME = 60.0
STREAM = object()
POOL_ID = "node1@file-1#pool1"


class Clock:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def states(clock: Clock) -> BackendStates:
    return BackendStates(clock, service_down_time=DOWN_TIME, wall_clock=lambda: T0)


def test_report_makes_pools(states: BackendStates) -> None:
    assert states.update(backend_report(pool_report(allocated_capacity_gb=7.0)), STREAM)
    (state,) = states.pools()
    assert state.pool_id == POOL_ID
    assert state.provisioned_capacity_gb == 7.0  # falls back to allocated
    assert state.max_over_subscription_ratio == 20.0
    assert not state.max_over_subscription_ratio_auto
    assert state.volume_count == 0  # the database's count, filled in by the placement
    assert state.capabilities["volume_backend_name"] == "file-1"
    # As Cinder's scheduler stamps a report: when it received it.
    assert state.capabilities["timestamp"] == T0.isoformat()
    assert states.first_report.is_set()
    assert states.pool(POOL_ID) == state


@pytest.mark.parametrize(
    ("changes", "ratio"),
    [
        (dict(max_over_subscription_ratio=5.0), 5.0),
        (dict(max_over_subscription_ratio=0.0), 20.0),
        (dict(thin_provisioning_support=False, max_over_subscription_ratio=5.0), 1.0),
        (dict(free_capacity_gb=math.inf, max_over_subscription_ratio=5.0), 1.0),
        (dict(total_capacity_gb=math.nan, max_over_subscription_ratio=5.0), 1.0),
        # "auto" (Cinder's calculate_max_over_subscription_ratio): 1 + provisioned / (used + 1)
        (
            dict(
                max_over_subscription_ratio_auto=True,
                total_capacity_gb=100.0,
                free_capacity_gb=79.0,
                provisioned_capacity_gb=66.0,
            ),
            1 + 66.0 / 22.0,
        ),
        # ... with the allocated capacity standing in for the provisioned one
        (
            dict(
                max_over_subscription_ratio_auto=True,
                free_capacity_gb=89.0,
                allocated_capacity_gb=24.0,
            ),
            3.0,
        ),
        # ... and 20 while nothing is provisioned (Cinder's INITIAL_AUTO_MOSR)
        (dict(max_over_subscription_ratio_auto=True, max_over_subscription_ratio=5.0), 20.0),
        (dict(max_over_subscription_ratio_auto=True, thin_provisioning_support=False), 1.0),
    ],
)
def test_effective_over_subscription_ratio(
    states: BackendStates, changes: dict[str, object], ratio: float
) -> None:
    states.update(backend_report(pool_report(**changes)), STREAM)
    assert states.pools()[0].max_over_subscription_ratio == pytest.approx(ratio)


def test_auto_ratio_is_shown_as_auto(states: BackendStates) -> None:
    states.update(backend_report(pool_report(max_over_subscription_ratio_auto=True)), STREAM)
    (state,) = states.pools()
    assert state.max_over_subscription_ratio_auto
    assert state.capabilities["max_over_subscription_ratio"] == "auto"


def test_lower_sequence_of_the_same_incarnation_is_ignored(states: BackendStates) -> None:
    new = pool_report(free_capacity_gb=50.0)
    assert states.update(backend_report(new, incarnation="m1", sequence=7), STREAM)
    assert not states.update(backend_report(incarnation="m1", sequence=6), STREAM)
    assert states.pools()[0].free_capacity_gb == 50.0
    # The same report again (a reconnected stream starts with the latest one): taken.
    assert states.update(backend_report(new, incarnation="m1", sequence=7), STREAM)


def test_a_new_incarnation_replaces_whatever_its_sequence(states: BackendStates) -> None:
    states.update(backend_report(incarnation="m1", sequence=900), STREAM)
    restarted = pool_report(free_capacity_gb=42.0)
    assert states.update(backend_report(restarted, incarnation="m2", sequence=1), STREAM)
    assert states.pools()[0].free_capacity_gb == 42.0
    assert not states.update(backend_report(incarnation="m2", sequence=0), STREAM)


def test_backend_is_down_after_service_down_time_without_a_report(
    states: BackendStates, clock: Clock
) -> None:
    states.update(backend_report(incarnation="m1", sequence=1), STREAM)
    states.update(backend_report(backend="node2@file-2", incarnation="m9", sequence=1), STREAM)
    clock.now += DOWN_TIME  # Cinder's service_is_up: elapsed <= service_down_time
    assert [p.pool_id for p in states.pools()] == [POOL_ID, "node2@file-2#pool1"]
    states.update(backend_report(backend="node2@file-2", incarnation="m9", sequence=2), STREAM)
    clock.now += 0.5
    assert not states.is_up("node1@file-1") and states.is_up("node2@file-2")
    assert [p.pool_id for p in states.pools()] == ["node2@file-2#pool1"]
    assert [v.name for v in states.pool_views()] == ["node2@file-2#pool1"]
    assert states.pool(POOL_ID) is None
    assert states.backends() == ["node1@file-1", "node2@file-2"]  # kept, not shown
    # A report brings it back.
    states.update(backend_report(incarnation="m1", sequence=2), STREAM)
    assert [p.pool_id for p in states.pools()] == [POOL_ID, "node2@file-2#pool1"]


def test_age_is_measured_from_receipt_not_from_any_report_field(
    states: BackendStates, clock: Clock
) -> None:
    clock.now += 10_000  # whatever the manager's clock said, receipt is what counts
    states.update(backend_report(sequence=1), STREAM)
    clock.now += DOWN_TIME - 1
    assert states.is_up("node1@file-1")


def test_pool_missing_from_report_is_removed(states: BackendStates) -> None:
    states.update(backend_report(pool_report(), pool_report(pool_name="pool2")), STREAM)
    assert len(states.pools()) == 2
    states.update(backend_report(pool_report(pool_name="pool2")), STREAM)
    assert [p.pool_id for p in states.pools()] == ["node1@file-1#pool2"]


def test_stream_end_removes_only_its_backend(states: BackendStates) -> None:
    old, new = object(), object()
    states.update(backend_report(), old)
    states.update(backend_report(backend="node2@file-2"), old)
    states.update(backend_report(), new)  # node1 reported on a new stream
    states.remove("node1@file-1", old)
    states.remove("node2@file-2", old)
    assert [p.pool_id for p in states.pools()] == [POOL_ID]
    states.remove("node1@file-1", new)
    assert states.pools() == []
    assert not states.is_up("node1@file-1")


def test_pool_views_show_reported_numbers(states: BackendStates) -> None:
    states.update(backend_report(pool_report(free_capacity_gb=80.0)), STREAM)
    (view,) = states.pool_views()
    assert view.name == POOL_ID
    assert view.capabilities["free_capacity_gb"] == 80.0
    assert view.capabilities["timestamp"] == T0.isoformat()


def test_default_clock_is_monotonic_and_wall_clock_is_utc() -> None:
    states = BackendStates()
    states.update(backend_report(), STREAM)
    stamp = states.pools()[0].capabilities["timestamp"]
    assert isinstance(stamp, str)
    assert dt.datetime.fromisoformat(stamp).tzinfo is not None
    assert states.is_up("node1@file-1")
