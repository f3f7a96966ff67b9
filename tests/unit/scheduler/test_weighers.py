import math
from typing import Any

import pytest

from services.scheduler.filters import FilterRequest
from services.scheduler.weighers import (
    capacity_weight,
    fix_infinite_weights,
    normalize,
    weigh_by_capacity,
)

from .factories import pool

THIN = dict(thin_provisioning_support=True, thick_provisioning_support=False)


def request(**extra_specs: str) -> FilterRequest:
    return FilterRequest(volume_id="v1", size_gb=1, extra_specs=extra_specs)


@pytest.mark.parametrize(
    ("changes", "multiplier", "weight"),
    [
        (dict(free_capacity_gb=30.0), 1.0, 30.0),
        (dict(free_capacity_gb=80.0, provisioned_capacity_gb=40.0), 1.0, 60.0),
        (dict(reserved_percentage=25), 1.0, 75.0),
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
        (dict(free_capacity_gb=math.inf), 1.0, -1.0),
        (dict(total_capacity_gb=math.nan), 1.0, -1.0),
        (dict(free_capacity_gb=math.nan), -1.0, math.inf),
    ],
)
def test_raw_capacity_weight(changes: dict[str, Any], multiplier: float, weight: float) -> None:
    assert capacity_weight(pool(**changes), request(), multiplier) == weight


def test_raw_weight_of_thick_type_on_thin_pool() -> None:
    thin_pool = pool(
        **THIN, total_capacity_gb=10.0, free_capacity_gb=10.0, max_over_subscription_ratio=20.0
    )
    assert capacity_weight(thin_pool, request(), 1.0) == 200.0
    assert capacity_weight(thin_pool, request(**{"provisioning:type": "thick"}), 1.0) == 10.0


@pytest.mark.parametrize(
    ("weights", "expected"),
    [
        ([10.0, 30.0], [0.0, 1.0]),
        ([10.0, 20.0, 30.0], [0.0, 0.5, 1.0]),
        ([5.0, 5.0], [0.0, 0.0]),
        ([], []),
    ],
)
def test_normalize(weights: list[float], expected: list[float]) -> None:
    assert normalize(weights, min(weights, default=0), max(weights, default=0)) == expected


@pytest.mark.parametrize(
    ("weights", "expected", "low", "high"),
    [
        ([10.0, 30.0], [10.0, 30.0], 10.0, 30.0),
        ([10.0, 30.0, math.inf], [10.0, 30.0, 2030.0], 10.0, 2030.0),
        ([5.0, math.inf], [5.0, 10005.0], 5.0, 10005.0),
        ([math.inf, math.inf], [0.0, 0.0], 0.0, 0.0),
    ],
)
def test_fix_infinite_weights(
    weights: list[float], expected: list[float], low: float, high: float
) -> None:
    assert fix_infinite_weights(weights) == (expected, low, high)


def _names(weighed: list[Any]) -> list[tuple[str, float]]:
    return [(w.pool.pool_name, round(w.weight, 4)) for w in weighed]


SMALL = pool(pool_name="small", free_capacity_gb=10.0)
BIG = pool(pool_name="big", free_capacity_gb=30.0)
ENDLESS = pool(pool_name="endless", free_capacity_gb=math.inf)


@pytest.mark.parametrize(
    ("pools", "multiplier", "expected"),
    [
        ([SMALL, BIG], 1.0, [("big", 1.0), ("small", 0.0)]),
        ([SMALL, BIG], 2.5, [("big", 2.5), ("small", 0.0)]),
        ([SMALL, BIG], -1.0, [("small", 0.0), ("big", -1.0)]),
        (
            [SMALL, pool(pool_name="twin", free_capacity_gb=10.0)],
            1.0,
            [("small", 0.0), ("twin", 0.0)],
        ),
        ([ENDLESS, SMALL, BIG], 1.0, [("big", 1.0), ("small", 0.3548), ("endless", 0.0)]),
        ([ENDLESS, SMALL, BIG], -1.0, [("small", -0.0), ("big", -0.0099), ("endless", -1.0)]),
        ([ENDLESS], 1.0, [("endless", 0.0)]),
        ([], 1.0, []),
    ],
)
def test_weigh_by_capacity(pools: list[Any], multiplier: float, expected: list[Any]) -> None:
    assert _names(weigh_by_capacity(pools, request(), multiplier)) == expected


def test_thin_pool_outweighs_larger_thick_pool() -> None:
    thin = pool(
        pool_name="thin",
        **THIN,
        total_capacity_gb=10.0,
        free_capacity_gb=10.0,
        max_over_subscription_ratio=20.0,
    )
    thick = pool(pool_name="thick")
    assert weigh_by_capacity([thick, thin], request(), 1.0)[0].pool.pool_name == "thin"
    thick_type = request(**{"provisioning:type": "thick"})
    assert weigh_by_capacity([thick, thin], thick_type, 1.0)[0].pool.pool_name == "thick"
