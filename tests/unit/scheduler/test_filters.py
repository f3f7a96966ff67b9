"""The filters, case by case from Cinder's ``test_host_filters.py`` (CapacityFilterTestCase,
BasicFiltersTestCase's CapabilitiesFilter, AvailabilityZoneFilter and
IgnoreAttemptedHostsFilter cases), with the reasons a pool is filtered out. The pools are
Cinder's ``FakeBackendState('host1', {...})`` (``cinder_hosts.backend_state``): pool
``host1#pool0``. The affinity and JSON filters are in their own files."""

import math
from typing import Any

import pytest

from services.scheduler.filters import (
    AVAILABILITY_ZONE_FILTER,
    CAPABILITIES_FILTER,
    CAPACITY_FILTER,
    DEFAULT_FILTERS,
    IGNORE_ATTEMPTED_HOSTS_FILTER,
    RETRY_FILTER,
    SOURCE_BACKEND_FILTER,
    FilterRequest,
    availability_zone_check,
    capabilities_check,
    capacity_check,
    filters_for,
    ignore_attempted_hosts_check,
    passes,
    satisfies_extra_specs,
)

from .cinder_hosts import backend_state

HOST = "host1#pool0"


def request(size: int = 100, **changes: Any) -> FilterRequest:
    return FilterRequest(volume_id="v1", size_gb=size, **changes)


def test_default_filters_in_cinders_order() -> None:
    assert [f.name for f in DEFAULT_FILTERS] == [
        "AvailabilityZoneFilter",
        "CapacityFilter",
        "CapabilitiesFilter",
    ]


def test_passes_helper_and_method() -> None:
    small = backend_state(total_capacity_gb=10.0, free_capacity_gb=10.0)
    assert passes(CAPACITY_FILTER, small, request(10))
    assert not passes(CAPACITY_FILTER, small, request(11))
    assert CAPACITY_FILTER.passes(small, request(10))
    assert not CAPACITY_FILTER.passes(small, request(11))


# ---- CapacityFilter: CapacityFilterTestCase -------------------------------------------------

THIN = dict(thin_provisioning_support=True, thick_provisioning_support=False)
THICK = dict(thin_provisioning_support=False, thick_provisioning_support=True)
BOTH = dict(thin_provisioning_support=True, thick_provisioning_support=True)


def _pool(
    total: float,
    free: float,
    prov: float = 0,
    mosr: float = 1.0,
    reserved: int = 0,
    **support: bool,
) -> dict[str, Any]:
    return dict(
        total_capacity_gb=float(total),
        free_capacity_gb=float(free),
        provisioned_capacity_gb=float(prov),
        max_over_subscription_ratio=mosr,
        reserved_percentage=reserved,
        **support,
    )


def _thick(requested: int, avail: float) -> str:
    return (
        f"Insufficient free space for volume creation on host {HOST} (requested / avail): "
        f"{requested}/{avail}"
    )


def _virtual(avail: float, requested: int) -> str:
    return (
        f"Insufficient free virtual space ({avail}GB) to accommodate thin provisioned "
        f"{requested}GB volume on host {HOST}."
    )


def _reserve(total: str) -> str:
    return (
        "Cannot calculate GB of reserved space (5%) with backend's reported total capacity "
        f"'{total}'"
    )


INF, NAN = math.inf, math.nan
# (pool, size, extra specs, None if it passes else the reason)
CINDER_CAPACITY_CASES = [
    pytest.param(_pool(500, 200), 100, {}, None, id="test_filter_passes"),
    pytest.param(_pool(500, 200), 100, {}, None, id="test_filter_passes_without_volume_id"),
    pytest.param(_pool(200, 120, reserved=20), 121, {}, _thick(121, 120.0), id="test_filter_fails"),
    pytest.param(_pool(500, 200, 1500, 2.0, 5, **THIN), 0, {}, None, id="test_filter_with_size_0"),
    pytest.param(_pool(0, INF), 100, {}, None, id="test_filter_passes_infinite"),
    # Cinder's extend request (new_size) does not go through this scheduler; its negative
    # case is a create that does not fit:
    pytest.param(
        _pool(500, 49), 50, {}, _thick(50, 49.0), id="test_filter_extend_request_negative"
    ),
    pytest.param(_pool(0, NAN), 100, {}, None, id="test_filter_passes_unknown"),
    pytest.param(_pool(INF, INF), 100, {}, None, id="test_filter_passes_total_infinite"),
    pytest.param(_pool(NAN, NAN), 100, {}, None, id="test_filter_passes_total_unknown"),
    # Cinder's free capacity is None in the next three (its first check fails them); with a
    # number they fail where their names say.
    pytest.param(
        _pool(INF, 0, reserved=5),
        100,
        {},
        _reserve("infinite"),
        id="test_filter_fails_total_infinite",
    ),
    pytest.param(
        _pool(NAN, 0, reserved=5),
        100,
        {},
        _reserve("unknown"),
        id="test_filter_fails_total_unknown",
    ),
    pytest.param(
        _pool(0, 0, reserved=5),
        100,
        {},
        f"Insufficient free space for volume creation. Total capacity is 0.00 on host {HOST}.",
        id="test_filter_fails_total_zero",
    ),
    pytest.param(
        _pool(500, 200, 500, 2.0, 5, **THIN), 100, {}, None, id="test_filter_thin_true_passes"
    ),
    pytest.param(
        _pool(500, 200, 7000, 20, 5, **THIN), 2400, {}, None, id="test_filter_thin_true_passes2"
    ),
    pytest.param(
        _pool(500, 200, 300, 1.0, 5, **THICK), 100, {}, None, id="test_filter_thin_false_passes"
    ),
    pytest.param(
        _pool(500, 100, 400, 0.8, 0, **THIN),
        200,
        {},
        f"Filtering out host {HOST} with an invalid maximum over subscription ratio of 0.80. "
        "The ratio should be a minimum of 1.0.",
        id="test_filter_over_subscription_less_than_1",
    ),
    pytest.param(
        _pool(500, 200, 400, 1.0, 0, **THIN),
        150,
        {},
        "Insufficient free space for thin provisioning. The ratio of provisioned capacity over "
        "total capacity 1.10 has exceeded the maximum over subscription ratio 1.00 on host "
        f"{HOST}.",
        id="test_filter_over_subscription_equal_to_1",
    ),
    pytest.param(
        _pool(500, 200, 700, 1.5, 5, **THIN),
        100,
        {},
        _virtual(12.5, 100),
        id="test_filter_over_subscription_fails",
    ),
    pytest.param(
        _pool(500, 30, 9000, 20, 0, **THIN),
        2000,
        {},
        _virtual(1000.0, 2000),
        id="test_filter_over_subscription_fails2",
    ),
    pytest.param(
        _pool(500, 100, 1000, 2.0, 5, **THIN),
        100,
        {},
        _virtual(-50.0, 100),
        id="test_filter_reserved_thin_true_fails",
    ),
    pytest.param(
        _pool(500, 100, 400, 1.0, 5, **THICK),
        100,
        {},
        _thick(100, 75.0),
        id="test_filter_reserved_thin_false_fails",
    ),
    pytest.param(
        _pool(500, 0, 800, 2.0, 5, **BOTH),
        151,
        {},
        _virtual(150.0, 151),
        id="test_filter_reserved_thin_thick_true_fails",
    ),
    pytest.param(
        _pool(500, 125, 400, 2.0, 5, **BOTH),
        100,
        {},
        None,
        id="test_filter_reserved_thin_thick_true_passes",
    ),
    pytest.param(
        _pool(500, 80, 600, 2.0, 5, **THIN),
        100,
        {},
        None,
        id="test_filter_reserved_thin_true_passes",
    ),
    pytest.param(
        _pool(500, 99, 1000, 2.0, 5, **BOTH),
        100,
        {},
        _virtual(-50.0, 100),
        id="test_filter_reserved_thin_thick_true_fails2",
    ),
    pytest.param(
        _pool(500, 100, 400, 2.0, 0, **BOTH),
        100,
        {},
        None,
        id="test_filter_reserved_thin_thick_true_passes2",
    ),
    *(
        pytest.param(
            _pool(500, 100, 400, 2.0, 0, **BOTH),
            100,
            specs,
            None,
            id=f"test_filter_provisioning_type[{name}]",
        )
        for name, specs in [
            ("thick", {"provisioning:type": "thick"}),
            ("thin", {"provisioning:type": "thin"}),
            ("no-extra-specs", {}),
        ]
    ),
]


@pytest.mark.parametrize(("changes", "size", "specs", "reason"), CINDER_CAPACITY_CASES)
def test_cinder_capacity_filter(
    changes: dict[str, Any], size: int, specs: dict[str, str], reason: str | None
) -> None:
    assert capacity_check(backend_state(**changes), request(size, extra_specs=specs)) == reason


# Ours, on a 100 GB pool: thick unless said otherwise. (pool, size, passes)
OUR_CAPACITY_CASES: list[Any] = [
    pytest.param(_pool(100, 50, 50, **THICK), 50, True, id="thick-fits"),
    pytest.param(_pool(100, 50, 50, **THICK), 51, False, id="thick-full"),
    pytest.param(_pool(100, 80, 40, **THICK), 61, False, id="thick-provisioned"),
    pytest.param(_pool(100, 100, reserved=10, **THICK), 90, True, id="thick-reserve-edge"),
    pytest.param(_pool(100, 100, reserved=10, **THICK), 91, False, id="thick-reserve"),
    pytest.param(_pool(10, 10, 100, 20.0, **THIN), 100, True, id="thin-oversubscribed-fits"),
    pytest.param(_pool(10, 10, 100, 20.0, **THIN), 101, False, id="thin-virtual-free"),
    pytest.param(_pool(10, 10, 0, 2.0, 50, **THIN), 10, True, id="thin-reserve-then-ratio"),
    pytest.param(_pool(10, 10, 0, 2.0, 50, **THIN), 11, False, id="thin-reserve-ratio-full"),
    pytest.param(_pool(10, 10, 0, 2.0, 100, **THIN), 1, False, id="thin-all-reserved"),
    pytest.param(_pool(100, 100, 90, 1.0, **THIN), 10, True, id="thin-ratio-at-the-limit"),
    pytest.param(_pool(100, 100, 90, 1.0, **THIN), 11, False, id="thin-ratio-over-the-limit"),
    pytest.param(_pool(-1, 10), 1, False, id="negative-total"),
    pytest.param(_pool(INF, 0, reserved=0), 10**6, True, id="total-infinite-no-reserve"),
]


@pytest.mark.parametrize(("changes", "size", "expected"), OUR_CAPACITY_CASES)
def test_capacity_filter(changes: dict[str, Any], size: int, expected: bool) -> None:
    assert (capacity_check(backend_state(**changes), request(size)) is None) is expected


def test_all_reserved_thin_pool_fails_where_cinder_divides_by_zero() -> None:
    pool = backend_state(**_pool(10, 10, 0, 2.0, 100, **THIN))
    assert capacity_check(pool, request(1)) == (
        f"Insufficient free space for thin provisioning. The total available capacity is 0 "
        f"on host {HOST}."
    )


def test_thick_type_on_thin_pool_ignores_the_ratio() -> None:
    thin_pool = backend_state(**_pool(10, 10, 0, 20.0, **THIN))
    assert capacity_check(thin_pool, request(20)) is None
    assert capacity_check(thin_pool, request(20, extra_specs={"provisioning:type": "thick"})) == (
        _thick(20, 10.0)
    )


# ---- CapabilitiesFilter: BasicFiltersTestCase._do_test_type_filter_extra_specs ---------------

CINDER_CAPABILITIES_CASES = [
    pytest.param(
        {"opt1": "1", "opt2": "2"},
        {"opt1": "1", "opt2": "2"},
        True,
        id="test_capability_filter_passes_extra_specs_simple",
    ),
    pytest.param(
        {"opt1": "1", "opt2": "2"},
        {"opt1": "1", "opt2": "222"},
        False,
        id="test_capability_filter_fails_extra_specs_simple",
    ),
    pytest.param(
        {"opt1": 10, "opt2": 5},
        {"opt1": ">= 2", "opt2": "<= 8"},
        True,
        id="test_capability_filter_passes_extra_specs_complex",
    ),
    pytest.param(
        {"opt1": 10, "opt2": 5},
        {"opt1": ">= 2", "opt2": ">= 8"},
        False,
        id="test_capability_filter_fails_extra_specs_complex",
    ),
    pytest.param(
        {"opt1": ["1", "2"], "opt2": "2"},
        {"opt1": "1", "opt2": "2"},
        True,
        id="test_capability_filter_passes_extra_specs_list_simple",
    ),
    *(
        pytest.param(
            {"opt1": [True, False], "opt2": ["1", "2"]},
            {"opt1": opt1, "opt2": "<= 8"},
            True,
            id=f"test_capability_filter_passes_extra_specs_list_complex[{opt1}]",
        )
        for opt1 in ("<is> True", "<is> False")
    ),
    pytest.param(
        {"opt1": ["1", "2"], "opt2": ["2"]},
        {"opt1": "3", "opt2": "2"},
        False,
        id="test_capability_filter_fails_extra_specs_list_simple",
    ),
    pytest.param(
        {"opt1": [True, False], "opt2": ["1", "2"]},
        {"opt1": "fake", "opt2": "<= 8"},
        False,
        id="test_capability_filter_fails_extra_specs_list_complex",
    ),
    pytest.param(
        {"scope_lv1": {"opt1": 10}},
        {"capabilities:scope_lv1:opt1": ">= 2"},
        True,
        id="test_capability_filter_passes_scope_extra_specs",
    ),
    pytest.param(
        {"scope_lv1": {"opt1": 10}, "opt2": 5},
        {"scope_lv1:opt1": "= 2", "opt2": ">= 3"},
        True,
        id="test_capability_filter_passes_fakescope_extra_specs",
    ),
    pytest.param(
        {"scope_lv1": {"opt1": 10}},
        {"capabilities:scope_lv1:opt1": "<= 2"},
        False,
        id="test_capability_filter_fails_scope_extra_specs",
    ),
    pytest.param(
        {"scope_lv0": {"scope_lv1": {"scope_lv2": {"opt1": 10}}}},
        {"capabilities:scope_lv0:scope_lv1:scope_lv2:opt1": ">= 2"},
        True,
        id="test_capability_filter_passes_multi_level_scope_extra_specs",
    ),
    pytest.param(
        {"scope_lv0": {"scope_lv1": None}},
        {"capabilities:scope_lv0:scope_lv1:scope_lv2:opt1": ">= 2"},
        False,
        id="test_capability_filter_fails_unenough_level_scope_extra_specs",
    ),
    pytest.param(
        {"scope_lv0": {"opt1": 10}},
        {"capabilities:scope_lv1:opt1": ">= 2"},
        False,
        id="test_capability_filter_fails_wrong_scope_extra_specs",
    ),
    pytest.param(
        {"scope_lv0": {"opt1": None}},
        {"capabilities:scope_lv0:opt1": None},
        True,
        id="test_capability_filter_passes_none_extra_specs",
    ),
    pytest.param(
        {"scope_lv0": {"opt1": 10}},
        {"capabilities:scope_lv0:opt1": None},
        False,
        id="test_capability_filter_fails_none_extra_specs",
    ),
    pytest.param(
        {"scope_lv0": {"opt1": None}},
        {"capabilities:scope_lv0:opt1": "foo"},
        False,
        id="test_capability_filter_fails_none_caps",
    ),
    pytest.param(
        {"scope_lv0": {"scope_lv1": {"scope_lv2": {"opt1": [True, False]}}}},
        {"capabilities:scope_lv0:scope_lv1:scope_lv2:opt1": "<is> True"},
        True,
        id="test_capability_filter_passes_multi_level_scope_extra_specs_list",
    ),
    pytest.param(
        {"scope_lv0": {"scope_lv1": {"scope_lv2": {"opt1": [True, False], "opt2": ["1", "2"]}}}},
        {
            "capabilities:scope_lv0:scope_lv1:scope_lv2:opt1": "<is> True",
            "capabilities:scope_lv0:scope_lv1:scope_lv2:opt2": "3",
        },
        False,
        id="test_capability_filter_fails_multi_level_scope_extra_specs_list",
    ),
    pytest.param(
        {"scope_lv0": {"opt1": [True, False]}},
        {"capabilities:scope_lv1:opt1": "<is> True"},
        False,
        id="test_capability_filter_fails_wrong_scope_extra_specs_list",
    ),
]


@pytest.mark.parametrize(("ecaps", "especs", "expected"), CINDER_CAPABILITIES_CASES)
def test_cinder_capabilities_filter(
    ecaps: dict[str, Any], especs: dict[str, str | None], expected: bool
) -> None:
    pool = backend_state(capabilities={"enabled": True, **ecaps})
    assert (capabilities_check(pool, request(extra_specs=especs)) is None) is expected


CAPS: dict[str, Any] = {
    "volume_backend_name": "file-1",
    "thin_provisioning_support": True,
    "multiattach": "True",
    "compression": {"level": "3"},
    "storage_protocol": ["iSCSI", "iscsi"],
}


@pytest.mark.parametrize(
    ("extra_specs", "reason"),
    [
        ({}, None),
        ({"volume_backend_name": "file-1"}, None),
        (
            {"volume_backend_name": "rbd-1"},
            'Volume type extra spec requirement "volume_backend_name=rbd-1" does not match '
            'reported capability "file-1"',
        ),
        ({"capabilities:volume_backend_name": "file-1"}, None),
        (
            {"capabilities:volume_backend_name": "rbd-1"},
            'Volume type extra spec requirement "capabilities:volume_backend_name=rbd-1" does '
            'not match reported capability "file-1"',
        ),
        ({"provisioning:type": "thick"}, None),  # another scope: skipped
        ({"vendor:anything": "x", "RESKEY:foo": "y"}, None),
        ({"missing_capability": "x"}, "Backend doesn't provide capability 'missing_capability'"),
        ({"capabilities:compression:ratio": "x"}, "Backend doesn't provide capability 'ratio'"),
        ({"thin_provisioning_support": "<is> True"}, None),
        (
            {"thin_provisioning_support": "True"},
            'Volume type extra spec requirement "thin_provisioning_support=True" does not match '
            'reported capability "True"',
        ),
        ({"multiattach": "<is> True", "volume_backend_name": "file-1"}, None),
        ({"capabilities:compression:level": ">= 2"}, None),
        (
            {"capabilities:compression:level": ">= 4"},
            'Volume type extra spec requirement "capabilities:compression:level=>= 4" does not '
            'match reported capability "3"',
        ),
        ({"storage_protocol": "<in> iscsi"}, None),
        ({"storage_protocol": "iSCSI"}, None),  # any item of a list
    ],
)
def test_capabilities_filter(extra_specs: dict[str, str], reason: str | None) -> None:
    assert capabilities_check(
        backend_state(capabilities=CAPS), request(extra_specs=extra_specs)
    ) == (reason)


def test_satisfies_extra_specs_is_the_filters_rule() -> None:
    assert satisfies_extra_specs(CAPS, {"volume_backend_name": "file-1"}) is None
    assert satisfies_extra_specs(CAPS, {"nope": "1"}) == "Backend doesn't provide capability 'nope'"


# ---- AvailabilityZoneFilter ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("pool_zone", "changes", "reason"),
    [
        pytest.param(
            "nova", {"availability_zone": "nova"}, None, id="test_availability_zone_filter_same"
        ),
        *(
            pytest.param(
                zone,
                {"availability_zones": ("nova1", "nova2")},
                reason,
                id=f"test_availability_zone_filter_with_AZs[{zone}]",
            )
            for zone, reason in [
                ("nova1", None),
                ("nova2", None),
                (
                    "nova3",
                    f"Availability zone 'nova3' of host {HOST} is not one of the requested "
                    "zones nova1, nova2",
                ),
            ]
        ),
        pytest.param(
            "nova",
            {"availability_zone": "bad"},
            f"Availability zone 'nova' of host {HOST} is not the requested zone 'bad'",
            id="test_availability_zone_filter_different",
        ),
        pytest.param("nova", {}, None, id="test_availability_zone_filter_empty"),
        pytest.param(
            "nova1",
            {"availability_zones": ("nova1",), "availability_zone": "other"},
            None,
            id="zones-take-precedence",
        ),
    ],
)
def test_availability_zone_filter(
    pool_zone: str, changes: dict[str, Any], reason: str | None
) -> None:
    pool = backend_state(availability_zone=pool_zone)
    assert availability_zone_check(pool, request(**changes)) == reason
    assert passes(AVAILABILITY_ZONE_FILTER, pool, request(**changes)) is (reason is None)


# ---- IgnoreAttemptedHostsFilter (also RetryFilter) ----------------------------------------


@pytest.mark.parametrize(
    ("tried", "reason"),
    [
        pytest.param((), None, id="test_ignore_attempted_hosts_filter_disabled"),
        pytest.param(("host2#pool0",), None, id="test_ignore_attempted_hosts_filter_pass"),
        pytest.param(
            ("host1#pool0",),
            f"Backend {HOST} fails.  Previously tried backends: ['{HOST}']",
            id="test_ignore_attempted_hosts_filter_fail",
        ),
        pytest.param(("host1@b#pool0", "host1"), None, id="pool-level-only"),
    ],
)
def test_ignore_attempted_hosts_filter(tried: tuple[str, ...], reason: str | None) -> None:
    req = request(tried_hosts=tried, num_attempts=len(tried))
    assert ignore_attempted_hosts_check(backend_state(), req) == reason
    for pool_filter in (IGNORE_ATTEMPTED_HOSTS_FILTER, RETRY_FILTER):
        assert pool_filter.check(backend_state(), req) == reason


def test_filter_names() -> None:
    assert [
        f.name
        for f in (
            AVAILABILITY_ZONE_FILTER,
            CAPACITY_FILTER,
            CAPABILITIES_FILTER,
            IGNORE_ATTEMPTED_HOSTS_FILTER,
            RETRY_FILTER,
            SOURCE_BACKEND_FILTER,
        )
    ] == [
        "AvailabilityZoneFilter",
        "CapacityFilter",
        "CapabilitiesFilter",
        "IgnoreAttemptedHostsFilter",
        "RetryFilter",
        "SourceBackendFilter",
    ]


def test_source_backend_runs_first_and_only_for_a_source() -> None:
    assert filters_for(request(), DEFAULT_FILTERS) == DEFAULT_FILTERS
    pinned = request(source_backend="node2@file-2")
    assert filters_for(pinned, DEFAULT_FILTERS) == (SOURCE_BACKEND_FILTER, *DEFAULT_FILTERS)
    assert SOURCE_BACKEND_FILTER.check(backend_state(), pinned) == (
        f"Backend {HOST} does not hold the source of volume v1 (it is on node2@file-2)"
    )
    assert SOURCE_BACKEND_FILTER.check(backend_state(), request(source_backend="host1")) is None
    assert SOURCE_BACKEND_FILTER.check(backend_state(), request(source_backend=HOST)) is None
