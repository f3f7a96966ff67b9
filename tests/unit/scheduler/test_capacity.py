import math

import pytest

from services.scheduler.capacity import calculate_capacity_factors, is_unbounded

# (total, free, provisioned, thin_support, mosr, reserved %, thin) ->
# (total_reserved_available, total_available, calculated_free, virtual_free, free %, ratio)
CASES = [
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


@pytest.mark.parametrize(("args", "expected"), CASES)
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
    kwargs = dict(total=10.0, free=10.0, provisioned=0.0, max_over_subscription_ratio=5.0)
    thin = calculate_capacity_factors(**kwargs, thin_support=True, reserved_percentage=0, thin=True)
    thick = calculate_capacity_factors(
        **kwargs, thin_support=False, reserved_percentage=0, thin=True
    )
    assert thin.max_over_subscription_ratio == 5.0
    assert thick.max_over_subscription_ratio is None


@pytest.mark.parametrize(
    ("value", "expected"), [(math.inf, True), (math.nan, True), (0.0, False), (-1.0, False)]
)
def test_is_unbounded(value: float, expected: bool) -> None:
    assert is_unbounded(value) is expected
