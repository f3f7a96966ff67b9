"""The weighers and weight handlers, case by case from Cinder's test_capacity_weigher.py,
test_allocated_capacity_weigher.py, test_volume_number_weigher.py, test_weights.py and
test_stochastic_weight_handler.py, over Cinder's five fake hosts (``cinder_hosts``).

Cinder's comments in test_capacity_weigher.py still show the formula of before the capacity
factors (``total * ratio - provisioned - reserve``; host2 "1120"); its assertions (winner,
best and worst weights) hold with today's formula, and the weights asserted here are
today's: host1 922, host2 ``(2048 - 204) * 1.5 - 1748`` = 1018, host3 256, host4
``(2048 - 102) * 1.0 - 2047`` = -101, host5 unbounded."""

import math
import random
from collections.abc import Sequence
from typing import Any

import pytest

from services.scheduler.backend_state import PoolState
from services.scheduler.capacity import INFINITE, UNKNOWN
from services.scheduler.filters import FilterRequest
from services.scheduler.weighers import (
    ALLOCATED_CAPACITY_WEIGHER,
    CAPACITY_WEIGHER,
    DEFAULT_WEIGHERS,
    ORDERED,
    STOCHASTIC,
    VOLUME_NUMBER_WEIGHER,
    WeighedPool,
    Weigher,
    allocated_capacity_weigher,
    capacity_weigher,
    capacity_weight,
    choose,
    fix_infinite_weights,
    normalize,
    volume_number_weigher,
    weigh,
    weigh_by_capacity,
)

from .cinder_hosts import backend_state, service_states


def request(**extra_specs: str) -> FilterRequest:
    return FilterRequest(volume_id="v1", size_gb=1, extra_specs=extra_specs)


def hosts(weighed: Sequence[WeighedPool]) -> list[str]:
    """Cinder's ``volume_utils.extract_host(weighed.obj.host)`` of each, in order."""
    return [w.pool.backend for w in weighed]


def weights(weighed: Sequence[WeighedPool]) -> dict[str, float]:
    return {w.pool.backend: w.weight for w in weighed}


# ---- test_weights.py ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("weight_list", "expected", "minval", "maxval"),
    [
        ((), (), None, None),
        ((0.0, 0.0), (0.0, 0.0), None, None),
        ((1.0, 1.0), (0.0, 0.0), None, None),
        ((20.0, 50.0), (0.0, 1.0), None, None),
        ((20.0, 50.0), (0.0, 0.375), None, 100.0),
        ((20.0, 50.0), (0.4, 1.0), 0.0, None),
        ((20.0, 50.0), (0.2, 0.5), 0.0, 100.0),
    ],
)
def test_normalization(
    weight_list: tuple[float, ...],
    expected: tuple[float, ...],
    minval: float | None,
    maxval: float | None,
) -> None:
    assert tuple(normalize(weight_list, minval=minval, maxval=maxval)) == expected


def test_default_weighers_and_multipliers_are_cinders() -> None:
    assert DEFAULT_WEIGHERS == (CAPACITY_WEIGHER,)
    assert [(w.name, w.multiplier) for w in (CAPACITY_WEIGHER, ALLOCATED_CAPACITY_WEIGHER)] == [
        ("CapacityWeigher", 1.0),
        ("AllocatedCapacityWeigher", -1.0),
    ]
    assert (VOLUME_NUMBER_WEIGHER.name, VOLUME_NUMBER_WEIGHER.multiplier) == (
        "VolumeNumberWeigher",
        -1.0,
    )


# ---- test_capacity_weigher.py ---------------------------------------------------------------

THIN_TYPES = [
    pytest.param({"provisioning:type": "thin"}, id="thin"),
    pytest.param({}, id="no-extra-specs"),
]
SPREAD_THIN = {
    "host2": 1.0,
    "host1": (922 + 101) / 1119,
    "host3": (256 + 101) / 1119,
    "host5": (-1 + 101) / 1119,
    "host4": 0.0,
}
SPREAD_THICK = {  # host2 thick: min(300, 1844 - 1748) = 96
    "host1": 1.0,
    "host3": (256 + 101) / 1023,
    "host2": (96 + 101) / 1023,
    "host5": (-1 + 101) / 1023,
    "host4": 0.0,
}


def _assert_weighed(weighed: list[WeighedPool], expected: dict[str, float]) -> None:
    assert hosts(weighed) == list(expected)
    assert weights(weighed) == pytest.approx(expected)


@pytest.mark.parametrize("specs", THIN_TYPES)
def test_default_of_spreading_first(specs: dict[str, str]) -> None:
    weighed = weigh(service_states(), request(**specs), [capacity_weigher(1.0)])
    assert (weighed[0].weight, weighed[0].pool.backend) == (1.0, "host2")
    _assert_weighed(weighed, SPREAD_THIN)


def test_default_of_spreading_first_thick() -> None:
    weighed = weigh(service_states(), request(**{"provisioning:type": "thick"}), [CAPACITY_WEIGHER])
    assert (weighed[0].weight, weighed[0].pool.backend) == (1.0, "host1")
    _assert_weighed(weighed, SPREAD_THICK)


# host5 unbounded with a negative multiplier: +inf, replaced by 1018 + (1018 + 101) * 100
STACK_MAX = 1018 + 1119 * 100
STACK_THIN = {
    "host4": -0.0,
    "host3": -(256 + 101) / (STACK_MAX + 101),
    "host1": -(922 + 101) / (STACK_MAX + 101),
    "host2": -(1018 + 101) / (STACK_MAX + 101),
    "host5": -1.0,
}


@pytest.mark.parametrize(
    "specs", [*THIN_TYPES, pytest.param({"provisioning:type": "thick"}, id="thick")]
)
def test_capacity_weight_multiplier1(specs: dict[str, str]) -> None:
    weighed = weigh(service_states(), request(**specs), [capacity_weigher(-1.0)])
    assert (weighed[0].weight, weighed[0].pool.backend) == (0.0, "host4")
    assert (weighed[-1].weight, weighed[-1].pool.backend) == (-1.0, "host5")
    if specs.get("provisioning:type") != "thick":
        _assert_weighed(weighed, STACK_THIN)


@pytest.mark.parametrize(
    ("specs", "winner"),
    [
        pytest.param({"provisioning:type": "thin"}, "host2", id="thin"),
        pytest.param({}, "host2", id="no-extra-specs"),
        pytest.param({"provisioning:type": "thick"}, "host1", id="thick"),
    ],
)
def test_capacity_weight_multiplier2(specs: dict[str, str], winner: str) -> None:
    weighed = weigh(service_states(), request(**specs), [capacity_weigher(2.0)])
    assert (weighed[0].weight, weighed[0].pool.backend) == (1.0 * 2, winner)
    if winner == "host2":
        _assert_weighed(weighed, {host: 2 * w for host, w in SPREAD_THIN.items()})


def test_capacity_weight_no_unknown_or_infinite() -> None:
    weighed = weigh(service_states({"host5": None}), request(), [capacity_weigher(-1.0)])
    assert (weighed[0].weight, weighed[0].pool.backend) == (0.0, "host4")
    assert (weighed[-1].weight, weighed[-1].pool.backend) == (-1.0, "host2")
    _assert_weighed(
        weighed,
        {
            "host4": -0.0,
            "host3": -(256 + 101) / 1119,
            "host1": -(922 + 101) / 1119,
            "host2": -1.0,
        },
    )


HOST5 = dict(
    allocated_capacity_gb=1548,
    provisioned_capacity_gb=1548,
    max_over_subscription_ratio=1.0,
    thin_provisioning_support=True,
    thick_provisioning_support=False,
    reserved_percentage=5,
)


@pytest.mark.parametrize(
    ("total", "free"),
    [
        pytest.param(3000, UNKNOWN, id="test_capacity_weight_free_unknown"),
        pytest.param(UNKNOWN, 3000, id="test_capacity_weight_cap_unknown"),
        pytest.param(3000, INFINITE, id="test_capacity_weight_free_infinite"),
        pytest.param(INFINITE, 3000, id="test_capacity_weight_cap_infinite"),
    ],
)
def test_capacity_weight_unbounded_host5(total: float, free: float) -> None:
    host5 = dict(HOST5, total_capacity_gb=total, free_capacity_gb=free)
    weighed = weigh(service_states({"host5": host5}), request(), [capacity_weigher(-1.0)])
    assert (weighed[0].weight, weighed[0].pool.backend) == (0.0, "host4")
    assert (weighed[-1].weight, weighed[-1].pool.backend) == (-1.0, "host5")
    _assert_weighed(weighed, STACK_THIN)


# ---- test_allocated_capacity_weigher.py ---------------------------------------------------


@pytest.mark.parametrize(
    ("multiplier", "winner", "best", "order"),
    [
        pytest.param(-1.0, "host1", 0.0, [1, 3, 5, 2, 4], id="test_default_of_spreading_first"),
        pytest.param(1.0, "host4", 1.0, [4, 2, 5, 3, 1], id="test_capacity_weight_multiplier1"),
        pytest.param(-2.0, "host1", 0.0, [1, 3, 5, 2, 4], id="test_capacity_weight_multiplier2"),
    ],
)
def test_allocated_capacity_weigher(
    multiplier: float, winner: str, best: float, order: list[int]
) -> None:
    weighed = weigh(service_states(), request(), [allocated_capacity_weigher(multiplier)])
    assert (weighed[0].weight, weighed[0].pool.backend) == (best, winner)
    allocated = {"host1": 0, "host2": 1748, "host3": 256, "host4": 1848, "host5": 1548}
    assert weights(weighed) == pytest.approx(
        {host: multiplier * a / 1848 for host, a in allocated.items()}
    )
    assert hosts(weighed) == [f"host{n}" for n in order]


# ---- test_volume_number_weigher.py: host N has N volumes ---------------------------------


@pytest.mark.parametrize(
    ("multiplier", "winner", "best"),
    [
        pytest.param(-1.0, "host1", 0.0, id="test_volume_number_weight_multiplier1"),
        pytest.param(1.0, "host5", 1.0, id="test_volume_number_weight_multiplier2"),
    ],
)
def test_volume_number_weigher(multiplier: float, winner: str, best: float) -> None:
    weighed = weigh(service_states(), request(), [volume_number_weigher(multiplier)])
    assert (weighed[0].weight, weighed[0].pool.backend) == (best, winner)
    assert weights(weighed) == pytest.approx(
        {f"host{n}": multiplier * (n - 1) / 4 for n in range(1, 6)}
    )


# ---- BaseWeightHandler: several weighers ----------------------------------------------------


def test_weighers_add_up_in_their_own_scale() -> None:
    pools = service_states()
    every = weigh(
        pools,
        request(),
        [capacity_weigher(1.0), allocated_capacity_weigher(-1.0), volume_number_weigher(-1.0)],
    )
    alone = {
        w.name: weights(weigh(pools, request(), [w]))
        for w in (capacity_weigher(1.0), allocated_capacity_weigher(-1.0), volume_number_weigher())
    }
    for weighed in every:
        host = weighed.pool.backend
        assert dict(weighed.weights) == pytest.approx({name: alone[name][host] for name in alone})
        assert weighed.weight == pytest.approx(sum(weighed.weights.values()))
    # host1: 0.9142 + 0 + 0; host3: 0.3190 - 0.1385 - 0.5; host2: 1 - 0.9459 - 0.25 ...
    assert hosts(every) == ["host1", "host2", "host3", "host5", "host4"]


def test_ties_keep_the_order_given_and_no_pools_weigh_nothing() -> None:
    twins = [backend_state(f"h{i}", total_capacity_gb=10.0, free_capacity_gb=10.0) for i in "ab"]
    assert hosts(weigh(twins, request(), [CAPACITY_WEIGHER])) == ["ha", "hb"]
    assert hosts(weigh(twins[::-1], request(), [CAPACITY_WEIGHER])) == ["hb", "ha"]
    assert weigh([], request(), [CAPACITY_WEIGHER]) == []
    assert [w.weight for w in weigh(twins, request(), [])] == [0.0, 0.0]


def _map_weigher(weight_map: dict[str, float], multiplier: float = 1.0) -> Weigher:
    """test_stochastic_weight_handler.py's MapWeigher: minval 0, maxval 100."""

    def raw(pool: PoolState, request: FilterRequest, multiplier: float) -> float:
        return weight_map[pool.backend]

    return Weigher("MapWeigher", raw, multiplier, minval=0.0, maxval=100.0)


ABC = [backend_state(name) for name in ("A", "B", "C")]
ABC_WEIGHTS = {"A": 1.0, "B": 3.0, "C": 2.0}


def test_preset_bounds_normalise() -> None:
    weighed = weigh(ABC, request(), [_map_weigher(ABC_WEIGHTS)])
    assert weights(weighed) == pytest.approx({"B": 0.03, "C": 0.02, "A": 0.01})


# ---- fix_infinite_weights (CapacityWeigher.weigh_objects) ---------------------------------


@pytest.mark.parametrize(
    ("raw", "expected", "low", "high"),
    [
        ([10.0, 30.0], [10.0, 30.0], 10.0, 30.0),
        ([10.0, 30.0, math.inf], [10.0, 30.0, 2030.0], 10.0, 2030.0),
        ([5.0, math.inf], [5.0, 10005.0], 5.0, 10005.0),
        ([math.inf, math.inf], [0.0, 0.0], 0.0, 0.0),  # Cinder raises here
    ],
)
def test_fix_infinite_weights(
    raw: list[float], expected: list[float], low: float, high: float
) -> None:
    assert fix_infinite_weights(raw, min(raw), max(raw)) == (expected, low, high)


THIN = dict(thin_provisioning_support=True, thick_provisioning_support=False)


@pytest.mark.parametrize(
    ("changes", "multiplier", "weight"),
    [
        (dict(total_capacity_gb=100.0, free_capacity_gb=30.0), 1.0, 30.0),
        (
            dict(total_capacity_gb=100.0, free_capacity_gb=80.0, provisioned_capacity_gb=40.0),
            1.0,
            60.0,
        ),
        (dict(total_capacity_gb=100.0, free_capacity_gb=100.0, reserved_percentage=25), 1.0, 75.0),
        (dict(**THIN, total_capacity_gb=10.0, max_over_subscription_ratio=20.0), 1.0, 200.0),
        (
            dict(
                **THIN,
                total_capacity_gb=10.0,
                provisioned_capacity_gb=50.0,
                reserved_percentage=10,
                max_over_subscription_ratio=20.0,
            ),
            1.0,
            130.0,
        ),
        (dict(free_capacity_gb=INFINITE), 1.0, -1.0),
        (dict(total_capacity_gb=UNKNOWN), 1.0, -1.0),
        (dict(free_capacity_gb=UNKNOWN), -1.0, math.inf),
        (dict(free_capacity_gb=UNKNOWN), 0.0, math.inf),  # Cinder: -1 only if > 0
    ],
)
def test_raw_capacity_weight(changes: dict[str, Any], multiplier: float, weight: float) -> None:
    assert capacity_weight(backend_state(**changes), request(), multiplier) == weight


def test_weigh_by_capacity_is_the_capacity_weigher() -> None:
    pools = service_states()
    by_capacity = weigh_by_capacity(pools, request(), -1.0)
    assert [(w.pool, w.weight) for w in by_capacity] == [
        (w.pool, w.weight) for w in weigh(pools, request(), [capacity_weigher(-1.0)])
    ]


# ---- test_stochastic_weight_handler.py ----------------------------------------------------


class FixedRandom(random.Random):
    """``random.random`` mocked to return one value."""

    def __init__(self, value: float) -> None:
        super().__init__(0)
        self.value = value

    def random(self) -> float:
        return self.value


@pytest.mark.parametrize(
    ("rand_value", "expected_obj"),
    [
        (0.0, "A"),
        (0.1, "A"),
        (0.2, "B"),
        (0.3, "B"),
        (0.4, "B"),
        (0.5, "B"),
        (0.6, "B"),
        (0.7, "C"),
        (0.8, "C"),
        (0.9, "C"),
    ],
)
def test_get_weighed_objects_correct(rand_value: float, expected_obj: str) -> None:
    weighed = weigh(ABC, request(), [_map_weigher(ABC_WEIGHTS)])
    ordered = choose(weighed, STOCHASTIC, FixedRandom(rand_value))
    assert ordered[0].pool.backend == expected_obj
    # then the others by weight
    assert hosts(ordered) == [expected_obj, *(h for h in ("B", "C", "A") if h != expected_obj)]


@pytest.mark.parametrize(
    ("rand_value", "winner"),
    [(0.0, "host1"), (0.4, "host1"), (0.5, "host2"), (0.99, "host3")],
)
def test_stochastic_draws_by_raw_weight_in_the_order_given(rand_value: float, winner: str) -> None:
    # raw capacity weights 922, 1018, 256, -101, -1 (total 2094): bounds 922, 1940, 2196, ...
    weighed = weigh(service_states(), request(), [CAPACITY_WEIGHER])
    assert [w.raw_weight for w in sorted(weighed, key=lambda w: w.index)] == [
        922.0,
        1018.0,
        256.0,
        -101.0,
        -1.0,
    ]
    ordered = choose(weighed, STOCHASTIC, FixedRandom(rand_value))
    assert ordered[0].pool.backend == winner
    rest = [h for h in ("host2", "host1", "host3", "host5", "host4") if h != winner]
    assert hosts(ordered) == [winner, *rest]


def test_stochastic_without_a_winner_takes_the_first_as_cinders_code_does() -> None:
    zero = weigh(ABC, request(), [_map_weigher({"A": 0.0, "B": 0.0, "C": 0.0})])
    assert choose(zero, STOCHASTIC, FixedRandom(0.5))[0].pool.backend == "A"
    # negative weights are not shifted: the running totals fall, and the first always wins
    negative = weigh(ABC, request(), [_map_weigher(ABC_WEIGHTS, multiplier=-1.0)])
    for value in (0.0, 0.5, 0.99):
        assert choose(negative, STOCHASTIC, FixedRandom(value))[0].pool.backend == "A"


def test_stochastic_uses_the_capacity_weighers_finite_stand_in_for_inf() -> None:
    weighed = weigh(service_states(), request(), [capacity_weigher(-1.0)])
    raw = {w.pool.backend: w.raw_weight for w in weighed}
    assert raw["host5"] == -STACK_MAX
    assert raw["host1"] == -922.0


def test_ordered_handler_and_unknown_handler() -> None:
    weighed = weigh(service_states(), request(), [CAPACITY_WEIGHER])
    assert choose(weighed, ORDERED, random.Random(1)) == weighed
    assert choose(list(reversed(weighed)), ORDERED, random.Random(1)) == weighed
    assert choose([], STOCHASTIC, random.Random(1)) == []
    with pytest.raises(ValueError, match="Unknown weight handler 'Chance'"):
        choose(weighed, "Chance", random.Random(1))
