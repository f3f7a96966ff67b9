import math
from typing import Any

import pytest

from services.scheduler.backend_state import CapabilityValue
from services.scheduler.filters import (
    DEFAULT_FILTERS,
    FilterRequest,
    availability_zone_filter,
    capabilities_filter,
    capacity_filter,
    match_extra_spec,
)

from .factories import pool


def request(size: int = 10, az: str = "", **extra_specs: str) -> FilterRequest:
    return FilterRequest(
        volume_id="v1", size_gb=size, availability_zone=az, extra_specs=extra_specs
    )


def test_default_filters_in_cinders_order() -> None:
    assert [f.name for f in DEFAULT_FILTERS] == [
        "AvailabilityZoneFilter",
        "CapacityFilter",
        "CapabilitiesFilter",
    ]


@pytest.mark.parametrize(
    ("pool_az", "requested", "passes"),
    [("nova", "", True), ("nova", "nova", True), ("az2", "nova", False), ("", "nova", False)],
)
def test_availability_zone_filter(pool_az: str, requested: str, passes: bool) -> None:
    assert (
        availability_zone_filter(pool(availability_zone=pool_az), request(az=requested)) is passes
    )


THIN = dict(thin_provisioning_support=True, thick_provisioning_support=False)

CAPACITY_CASES: list[Any] = [
    pytest.param(
        dict(free_capacity_gb=50.0, provisioned_capacity_gb=50.0), 50, True, id="thick-fits"
    ),
    pytest.param(
        dict(free_capacity_gb=50.0, provisioned_capacity_gb=50.0), 51, False, id="thick-full"
    ),
    pytest.param(
        dict(free_capacity_gb=80.0, provisioned_capacity_gb=40.0), 61, False, id="thick-prov"
    ),
    pytest.param(dict(reserved_percentage=10), 90, True, id="thick-reserve-edge"),
    pytest.param(dict(reserved_percentage=10), 91, False, id="thick-reserve"),
    pytest.param(
        dict(
            **THIN,
            total_capacity_gb=10.0,
            free_capacity_gb=10.0,
            provisioned_capacity_gb=100.0,
            max_over_subscription_ratio=20.0,
        ),
        100,
        True,
        id="thin-oversubscribed-fits",
    ),
    pytest.param(
        dict(
            **THIN,
            total_capacity_gb=10.0,
            free_capacity_gb=10.0,
            provisioned_capacity_gb=100.0,
            max_over_subscription_ratio=20.0,
        ),
        101,
        False,
        id="thin-virtual-free",
    ),
    pytest.param(
        dict(
            **THIN,
            total_capacity_gb=10.0,
            free_capacity_gb=10.0,
            reserved_percentage=50,
            max_over_subscription_ratio=2.0,
        ),
        10,
        True,
        id="thin-reserve-then-ratio",
    ),
    pytest.param(
        dict(
            **THIN,
            total_capacity_gb=10.0,
            free_capacity_gb=10.0,
            reserved_percentage=50,
            max_over_subscription_ratio=2.0,
        ),
        11,
        False,
        id="thin-reserve-then-ratio-full",
    ),
    pytest.param(dict(**THIN, max_over_subscription_ratio=0.5), 1, False, id="thin-invalid-mosr"),
    pytest.param(
        dict(
            **THIN, total_capacity_gb=10.0, reserved_percentage=100, max_over_subscription_ratio=2.0
        ),
        1,
        False,
        id="thin-all-reserved",
    ),
    pytest.param(dict(free_capacity_gb=math.inf), 10**6, True, id="free-infinite"),
    pytest.param(dict(free_capacity_gb=math.nan), 10**6, True, id="free-unknown"),
    pytest.param(dict(total_capacity_gb=math.inf), 10**6, True, id="total-infinite"),
    pytest.param(
        dict(total_capacity_gb=math.nan, reserved_percentage=5),
        1,
        False,
        id="total-unknown-with-reserve",
    ),
    pytest.param(dict(total_capacity_gb=0.0), 1, False, id="no-total"),
]


@pytest.mark.parametrize(("changes", "size", "passes"), CAPACITY_CASES)
def test_capacity_filter(changes: dict[str, Any], size: int, passes: bool) -> None:
    assert capacity_filter(pool(**changes), request(size)) is passes


def test_capacity_filter_thick_type_on_thin_pool() -> None:
    thin_pool = pool(
        **THIN, total_capacity_gb=10.0, free_capacity_gb=10.0, max_over_subscription_ratio=20.0
    )
    assert capacity_filter(thin_pool, request(20))
    assert not capacity_filter(thin_pool, request(20, **{"provisioning:type": "thick"}))


MATCH_CASES: list[Any] = [
    ("file-1", "file-1", True),
    ("file-1", "file-2", False),
    (True, "True", False),  # plain equality: a boolean is not the string
    (True, "<is> True", True),
    ("True", "<is> true", True),
    (False, "<is> True", False),
    ("yes", "<is> True", True),
    (100.0, "= 50", True),  # '=' means at least
    (40.0, "= 50", False),
    ("50", "== 50", True),
    ("50", "!= 50", False),
    ("60", ">= 50", True),
    ("60", "<= 50", False),
    ("abc", "== 5", False),  # not a number
    ("iSCSI", "<or> FC <or> iSCSI", True),
    ("NFS", "<or> FC <or> iSCSI", False),
    (1.0, "<or> 1.0", False),  # compared as strings: a number never matches
    ("rbd ceph", "<in> ceph", True),
    ("rbd", "<in> ceph", False),
    (5.0, "<in> 5", False),
    ("b", "s> a", True),
    ("a", "s== a", True),
    ("a", "s!= a", False),
    ("a", "s< b", True),
    ("a", "s>= b", False),
    (3.0, "s< b", False),
    ("x", "<is>", False),  # operator without argument
    ("50", ">= 10 60", True),  # only the first argument counts
]


@pytest.mark.parametrize(("value", "requirement", "expected"), MATCH_CASES)
def test_match_extra_spec(value: CapabilityValue, requirement: str, expected: bool) -> None:
    assert match_extra_spec(value, requirement) is expected


CAPS: dict[str, CapabilityValue] = {
    "volume_backend_name": "file-1",
    "thin_provisioning_support": True,
    "multiattach": "True",
    "compression:level": "3",
}


@pytest.mark.parametrize(
    ("extra_specs", "passes"),
    [
        ({}, True),
        ({"volume_backend_name": "file-1"}, True),
        ({"volume_backend_name": "rbd-1"}, False),
        ({"capabilities:volume_backend_name": "file-1"}, True),
        ({"provisioning:type": "thick"}, True),  # scoped: skipped
        ({"vendor:anything": "x", "RESKEY:foo": "y"}, True),
        ({"missing_capability": "x"}, False),
        ({"thin_provisioning_support": "<is> True"}, True),
        ({"thin_provisioning_support": "True"}, False),
        ({"multiattach": "<is> True", "volume_backend_name": "file-1"}, True),
        ({"capabilities:compression:level": ">= 2"}, True),
        ({"capabilities:compression:level": ">= 4"}, False),
    ],
)
def test_capabilities_filter(extra_specs: dict[str, str], passes: bool) -> None:
    assert capabilities_filter(pool(capabilities=CAPS), request(**extra_specs)) is passes
