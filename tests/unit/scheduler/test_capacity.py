"""Cinder's capacity arithmetic, case by case from ``cinder/tests/unit/test_utils.py``
(TestCalculateVirtualFree, TestAutoMaxOversubscriptionRatio), and ours."""

import math
from typing import Any

import pytest

from services.scheduler.capacity import (
    INFINITE,
    UNKNOWN,
    calculate_capacity_factors,
    calculate_max_over_subscription_ratio,
    calculate_virtual_free_capacity,
    cinder_capacity,
    is_unbounded,
)

# TestCalculateVirtualFree.test_utils_calculate_virtual_free_capacity_provision_type: every
# host reserves 5%. (total, free, provisioned, max_ratio, thin_support, is_thin_lun) -> free
VIRTUAL_FREE_CASES = [
    pytest.param(30.01, 28.01, 2.0, 1.0, False, False, 27.01, id="thick-pool-thick-lun"),
    pytest.param(20.01, 18.01, 2.0, 2.0, True, True, 36.02, id="thin-pool-thin-lun"),
    pytest.param(20.01, 18.01, 2.0, 2.0, True, True, 36.02, id="thin-thick-pool-thin-lun"),
    pytest.param(30.01, 28.01, 2.0, 2.0, True, False, 27.01, id="thin-thick-pool-thick-lun"),
]


@pytest.mark.parametrize(
    ("total", "free", "provisioned", "max_ratio", "thin_support", "thin", "expected"),
    VIRTUAL_FREE_CASES,
)
def test_utils_calculate_virtual_free_capacity_provision_type(
    total: float,
    free: float,
    provisioned: float,
    max_ratio: float,
    thin_support: bool,
    thin: bool,
    expected: float,
) -> None:
    assert (
        calculate_virtual_free_capacity(
            total=total,
            free=free,
            provisioned=provisioned,
            thin_support=thin_support,
            max_over_subscription_ratio=max_ratio,
            reserved_percentage=5,
            thin=thin,
        )
        == expected
    )


# TestCalculateVirtualFree.test_utils_calculate_capacity_factors:
# (total, free, provisioned, max_ratio, thin_support, is_thin_lun, reserved%) ->
# (total, reserved, free, total_available, virtual_free, free%, type, provisioned_ratio)
FACTOR_CASES = [
    pytest.param(
        (30.01, 28.01, 2.0, 1.0, False, False, 5),
        (30.01, 1, 28.01, 29.01, 27.01, 93.11, "thick", 0.07),
        id="thick-5pct",
    ),
    pytest.param(
        (20.01, 18.01, 2.0, 2.0, True, True, 10),
        (20.01, 2, 18.01, 36.02, 34.02, 94.45, "thin", 0.06),
        id="thin-10pct",
    ),
    pytest.param(
        (20.01, 18.01, 2.0, 2.0, True, True, 20),
        (20.01, 4, 18.01, 32.02, 30.02, 93.75, "thin", 0.06),
        id="thin-thick-support-20pct",
    ),
    pytest.param(
        (30.01, 28.01, 2.0, 2.0, True, False, 10),
        (30.01, 3, 28.01, 27.01, 25.01, 92.6, "thick", 0.07),
        id="thick-lun-on-thin-pool-10pct",
    ),
]


@pytest.mark.parametrize(("args", "expected"), FACTOR_CASES)
def test_utils_calculate_capacity_factors(
    args: tuple[float, float, float, float, bool, bool, int], expected: tuple[Any, ...]
) -> None:
    total, free, provisioned, max_ratio, thin_support, thin, reserved = args
    factors = calculate_capacity_factors(
        total=total,
        free=free,
        provisioned=provisioned,
        thin_support=thin_support,
        max_over_subscription_ratio=max_ratio,
        reserved_percentage=reserved,
        thin=thin,
    )
    assert (
        factors.total_capacity,
        factors.reserved_capacity,
        factors.free_capacity,
        factors.total_available_capacity,
        factors.virtual_free_capacity,
        factors.free_percent,
        factors.provisioned_type,
        factors.provisioned_ratio,
    ) == expected


# Ours: (total, free, provisioned, thin_support, mosr, reserved %, thin) ->
# (total_reserved_available, total_available, calculated_free, virtual_free, free %, ratio)
OUR_FACTOR_CASES = [
    pytest.param(
        (3.47, 3.47, 10, True, 20.0, 0, True),
        (3.47, 69.4, 59.4, 59.4, 85.59, 0.14),
        id="seed-rbd-thin",
    ),
    pytest.param(
        (100, 100, 50, True, 2.0, 10, True),
        (90, 180, 130, 130, 72.22, 0.28),
        id="thin-reserved-oversubscribed",
    ),
    pytest.param(
        (100, 50, 30, False, 1.0, 10, True),
        (90, 90, 60, 50, 55.56, 0.33),
        id="thick-free-binds",
    ),
    pytest.param(
        (100, 80, 40, False, 1.0, 0, False),
        (100, 100, 60, 60, 60.0, 0.4),
        id="thick-provisioned-binds",
    ),
    pytest.param(
        (100, 100, 10, True, 20.0, 0, False),
        (100, 100, 90, 90, 90.0, 0.1),
        id="thick-type-on-thin-pool-ignores-mosr",
    ),
    pytest.param(
        (10, 10, 0, True, 20.0, 100, True),
        (0, 0, 0, 0, 0.0, 0.0),
        id="all-reserved-no-division",
    ),
    pytest.param(
        (10.5, 10.5, 0, False, 1.0, 15, True),
        (9.5, 9.5, 9.5, 9.5, 100.0, 0.0),
        id="reserve-is-floored",
    ),
]


@pytest.mark.parametrize(("args", "expected"), OUR_FACTOR_CASES)
def test_capacity_factors(
    args: tuple[float, float, float, bool, float, int, bool],
    expected: tuple[float, ...],
) -> None:
    total, free, prov, thin_support, mosr, reserved, thin = args
    factors = calculate_capacity_factors(
        total=total,
        free=free,
        provisioned=prov,
        thin_support=thin_support,
        max_over_subscription_ratio=mosr,
        reserved_percentage=reserved,
        thin=thin,
    )
    assert (
        factors.total_reserved_available_capacity,
        factors.total_available_capacity,
        factors.calculated_free_capacity,
        factors.virtual_free_capacity,
        factors.free_percent,
        factors.provisioned_ratio,
    ) == pytest.approx(expected)
    assert factors.provisioned_type == ("thin" if thin and thin_support else "thick")


def test_mosr_reported_only_on_thin_path() -> None:
    kwargs: dict[str, Any] = dict(
        total=10.0, free=10.0, provisioned=0.0, max_over_subscription_ratio=5.0
    )
    thin = calculate_capacity_factors(**kwargs, thin_support=True, reserved_percentage=0, thin=True)
    thick = calculate_capacity_factors(
        **kwargs, thin_support=False, reserved_percentage=0, thin=True
    )
    assert thin.max_over_subscription_ratio == 5.0
    assert thick.max_over_subscription_ratio is None


# TestAutoMaxOversubscriptionRatio.test_calculate_max_over_subscription_ratio: POOL_CAP1..10
# as (allocated, provisioned (None: not reported), thin_support, total, free, reported ratio
# (None: not reported)), the global ratio, and the result rounded to 2 places.
_NOT_REPORTED = None
MOSR_CASES = [
    pytest.param((10, 10, False, 10, 10, 1.0), "auto", 1.0, id="POOL_CAP1-no-thin-support"),
    pytest.param((10, 10, True, 100, 95, None), "auto", 2.67, id="POOL_CAP2-global-auto"),
    pytest.param((0, 0, True, 100, 100, "auto"), "20.0", 20, id="POOL_CAP3-auto-nothing-prov"),
    pytest.param(
        (100, _NOT_REPORTED, True, 2500, 500, "auto"), "20.0", 1.05, id="POOL_CAP4-allocated"
    ),
    pytest.param(
        (10000, _NOT_REPORTED, True, 2500, 0.1, "auto"), "10.0", 5.0, id="POOL_CAP5-nearly-full"
    ),
    pytest.param((1000, 1010, True, 2500, 2500, "auto"), "20.0", 1011.0, id="POOL_CAP6-unused"),
    pytest.param((10, 10, True, 10, 10, _NOT_REPORTED), "auto", 11.0, id="POOL_CAP7-no-ratio"),
    pytest.param((10, 10, True, 10, 10, "15.5"), "20.0", 15.5, id="POOL_CAP8-string-ratio"),
    pytest.param((10, 10, True, 10, UNKNOWN, "15.5"), "20.0", 1.0, id="POOL_CAP9-free-unknown"),
    pytest.param((10, 10, True, INFINITE, 10, "15.5"), "20.0", 1.0, id="POOL_CAP10-total-infinite"),
]


@pytest.mark.parametrize(("pool", "global_ratio", "expected"), MOSR_CASES)
def test_calculate_max_over_subscription_ratio(
    pool: tuple[float, float | None, bool, float, float, float | str | None],
    global_ratio: str,
    expected: float,
) -> None:
    allocated, provisioned, thin_support, total, free, ratio = pool
    result = calculate_max_over_subscription_ratio(
        thin_provisioning_support=thin_support,
        total_capacity_gb=total,
        free_capacity_gb=free,
        allocated_capacity_gb=allocated,
        provisioned_capacity_gb=provisioned,
        max_over_subscription_ratio=ratio,
        global_max_over_subscription_ratio=global_ratio,
    )
    assert round(result, 2) == expected


def test_a_ratio_that_is_not_a_number_raises_as_in_cinder() -> None:
    with pytest.raises(ValueError):
        calculate_max_over_subscription_ratio(
            thin_provisioning_support=True,
            total_capacity_gb=10,
            free_capacity_gb=10,
            max_over_subscription_ratio="lots",
            global_max_over_subscription_ratio="20.0",
        )


@pytest.mark.parametrize(
    ("value", "expected"),
    [(INFINITE, True), (UNKNOWN, True), (math.inf, True), (0.0, False), (-1.0, False)],
)
def test_is_unbounded(value: float, expected: bool) -> None:
    assert is_unbounded(value) is expected


@pytest.mark.parametrize(
    ("value", "expected"), [(INFINITE, "infinite"), (UNKNOWN, "unknown"), (3.5, 3.5)]
)
def test_cinder_capacity(value: float, expected: float | str) -> None:
    assert cinder_capacity(value) == expected
