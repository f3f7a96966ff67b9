"""JsonFilter: Cinder's BasicFiltersTestCase JSON cases (``test_host_filters.py``) case by
case over Cinder's ``FakeBackendState`` attributes (a namespace: ``free_ram_mb`` ...), then
the filter over our pools."""

import json
from typing import Any

import pytest

from services.scheduler.filters import (
    JSON_FILTER,
    FilterRequest,
    QueryError,
    evaluate_query,
    json_check,
    pool_namespace,
)

from .cinder_hosts import backend_state

QUERY = json.dumps(["and", [">=", "$free_ram_mb", 1024], [">=", "$free_disk_mb", 200 * 1024]])


def host(**attributes: Any) -> dict[str, Any]:
    """``FakeBackendState('host1', attributes)``: ``service`` is an empty mapping unless set."""
    return {"service": {}, **attributes}


ENABLED = {"enabled": True}

CINDER_CASES = [
    pytest.param(
        QUERY,
        host(free_ram_mb=1024, free_disk_mb=200 * 1024, capabilities=ENABLED),
        True,
        id="test_json_filter_passes",
    ),
    pytest.param(
        None,
        host(free_ram_mb=0, free_disk_mb=0, capabilities=ENABLED),
        True,
        id="test_json_filter_passes_with_no_query",
    ),
    pytest.param(
        QUERY,
        host(free_ram_mb=1023, free_disk_mb=200 * 1024, capabilities=ENABLED),
        False,
        id="test_json_filter_fails_on_memory",
    ),
    pytest.param(
        QUERY,
        host(free_ram_mb=1024, free_disk_mb=200 * 1024 - 1, capabilities=ENABLED),
        False,
        id="test_json_filter_fails_on_disk",
    ),
    pytest.param(
        json.dumps(
            [
                "and",
                [">=", "$free_ram_mb", 1024],
                [">=", "$free_disk_mb", 200 * 1024],
                "$capabilities.enabled",
            ]
        ),
        host(free_ram_mb=1024, free_disk_mb=200 * 1024, capabilities={"enabled": False}),
        False,
        id="test_json_filter_fails_on_caps_disabled",
    ),
    pytest.param(
        json.dumps(
            [
                "and",
                [">=", "$free_ram_mb", 1024],
                [">=", "$free_disk_mb", 200 * 1024],
                ["not", "$service.disabled"],
            ]
        ),
        host(free_ram_mb=1024, free_disk_mb=200 * 1024, capabilities=ENABLED),
        False,
        id="test_json_filter_fails_on_service_disabled",
    ),
]

HAPPY_DAY = json.dumps(
    [
        "and",
        "$capabilities.enabled",
        ["=", "$capabilities.opt1", "match"],
        [
            "or",
            ["and", ["<", "$free_ram_mb", 30], ["<", "$free_disk_mb", 300]],
            ["and", [">", "$free_ram_mb", 30], [">", "$free_disk_mb", 300]],
        ],
    ]
)
MATCH = {"enabled": True, "opt1": "match"}
UP = {"disabled": False}
HAPPY_DAY_HOSTS = [
    pytest.param(host(free_ram_mb=10, free_disk_mb=200, capabilities=MATCH, service=UP), True),
    pytest.param(host(free_ram_mb=40, free_disk_mb=400, capabilities=MATCH, service=UP), True),
    pytest.param(
        host(
            free_ram_mb=40,
            free_disk_mb=400,
            capabilities={"enabled": False, "opt1": "match"},
            service=UP,
        ),
        False,
        id="capabilities-disabled",
    ),
    pytest.param(
        host(free_ram_mb=30, free_disk_mb=300, capabilities=MATCH, service=UP),
        False,
        id="exact-memory-disk",
    ),
    pytest.param(
        host(free_ram_mb=20, free_disk_mb=400, capabilities=MATCH, service=UP),
        False,
        id="memory-lower-disk-higher",
    ),
    pytest.param(
        host(
            free_ram_mb=20,
            free_disk_mb=400,
            capabilities={"enabled": True, "opt1": "no-match"},
            service={"enabled": True},
        ),
        False,
        id="opt1-not-equal",
    ),
]

BASIC_OPERATORS = [
    ("=", [1, 1], True),
    ("=", [1, 2], False),
    ("<", [1, 2], True),
    ("<", [1, 1], False),
    ("<", [2, 1], False),
    (">", [2, 1], True),
    (">", [2, 2], False),
    (">", [2, 3], False),
    ("<=", [1, 2], True),
    ("<=", [1, 1], True),
    ("<=", [2, 1], False),
    (">=", [2, 1], True),
    (">=", [2, 2], True),
    (">=", [2, 3], False),
    ("in", [1, 1], True),
    ("in", [1, 1, 2, 3], True),
    ("in", [4, 1, 2, 3], False),
    ("not", [True], False),
    ("not", [False], True),
    ("or", [True, False], True),
    ("or", [False, False], False),
    ("and", [True, True], True),
    ("and", [False, False], False),
    ("and", [True, False], False),
    # Nested ((True or False) and (2 > 1)) == Passes
    ("and", [["or", True, False], [">", 2, 1]], True),
]
ENABLED_HOST = host(capabilities=ENABLED)


@pytest.mark.parametrize(("query", "namespace", "expected"), CINDER_CASES)
def test_cinder_json_filter(query: str | None, namespace: dict[str, Any], expected: bool) -> None:
    assert evaluate_query(query, namespace) is expected


@pytest.mark.parametrize(("namespace", "expected"), HAPPY_DAY_HOSTS)
def test_json_filter_happy_day(namespace: dict[str, Any], expected: bool) -> None:
    assert evaluate_query(HAPPY_DAY, namespace) is expected


@pytest.mark.parametrize(("op", "args", "expected"), BASIC_OPERATORS)
def test_json_filter_basic_operators(op: str, args: list[Any], expected: bool) -> None:
    assert evaluate_query(json.dumps([op, *args]), ENABLED_HOST) is expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        # [False, True, False, True]: any is true, so it passes
        (["not", True, False, True, False], True),
        # [False, False, False]
        (["not", True, True, True], False),
    ],
)
def test_json_filter_basic_operators_not_lists(raw: list[Any], expected: bool) -> None:
    assert evaluate_query(json.dumps(raw), ENABLED_HOST) is expected


def test_json_filter_unknown_operator_raises() -> None:
    with pytest.raises(QueryError, match="unknown operator '!='"):
        evaluate_query(json.dumps(["!=", 1, 2]), ENABLED_HOST)


@pytest.mark.parametrize("raw", [[], {}], ids=["list", "dict"])
def test_json_filter_empty_filters_pass(raw: Any) -> None:
    assert evaluate_query(json.dumps(raw), ENABLED_HOST) is True


@pytest.mark.parametrize(
    "raw",
    [[">", ["and", ["or", ["not", ["<", [">=", ["<=", ["in"]]]]]]]], [">", 1]],
    ids=["nested", "one-argument"],
)
def test_json_filter_invalid_num_arguments_fails(raw: list[Any]) -> None:
    assert evaluate_query(json.dumps(raw), ENABLED_HOST) is False


@pytest.mark.parametrize("raw", [["=", "$........", 1, 1], ["=", "$foo", 2, 2]])
def test_json_filter_unknown_variable_ignored(raw: list[Any]) -> None:
    assert evaluate_query(json.dumps(raw), ENABLED_HOST) is True


@pytest.mark.parametrize(
    ("query", "error"),
    [
        ("not json", "not JSON"),
        (json.dumps(["<", 1, "a"]), "cannot compare 1"),  # Python cannot order them
        (json.dumps(["=", "$capabilities.enabled.x", True]), "bool has no key 'x'"),
        (json.dumps({"a": 1}), "a query is a list, not dict"),
    ],
)
def test_queries_cinder_raises_on(query: str, error: str) -> None:
    with pytest.raises(QueryError, match=error):
        evaluate_query(query, ENABLED_HOST)


def _request(query: str | None) -> FilterRequest:
    return FilterRequest(volume_id="v1", size_gb=1, query=query)


POOL = backend_state(
    "node1@rbd-1",
    "cloud",
    total_capacity_gb=float("inf"),
    free_capacity_gb=float("nan"),
    capabilities={"volume_backend_name": "rbd-1", "storage_protocol": "ceph"},
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (["=", "$backend_id", "node1@rbd-1#cloud"], True),  # Cinder's docstring example
        (["=", "$host", "node1@rbd-1#other"], False),
        (["=", "$pool_name", "cloud"], True),
        (["=", "$volume_backend_name", "rbd-1"], True),
        (["=", "$capabilities.storage_protocol", "ceph"], True),
        (["=", "$free_capacity_gb", "unknown"], True),
        (["=", "$total_capacity_gb", "infinite"], True),
        (["in", "$service.availability_zone", "nova", "az2"], True),
        (["not", "$service.disabled"], True),
        ([">=", "$reserved_percentage", 0], True),
        (["=", "$cluster_name", "x"], False),  # None: left out, one argument
    ],
)
def test_json_filter_over_a_pool(raw: list[Any], expected: bool) -> None:
    assert (json_check(POOL, _request(json.dumps(raw))) is None) is expected
    assert JSON_FILTER.passes(POOL, _request(json.dumps(raw))) is expected


def test_json_filter_reasons() -> None:
    query = json.dumps(["=", "$pool_name", "other"])
    assert json_check(POOL, _request(query)) == (
        f"Host node1@rbd-1#cloud does not satisfy the query hint {query}"
    )
    assert json_check(POOL, _request("{")) == (
        "The query hint { cannot be evaluated on host node1@rbd-1#cloud: not JSON: "
        "Expecting property name enclosed in double quotes: line 1 column 2 (char 1)"
    )
    assert json_check(POOL, _request(None)) is None
    assert json_check(POOL, _request("")) is None


def test_pool_namespace_names_cinders_attributes() -> None:
    assert set(pool_namespace(POOL)) == {
        "host",
        "backend_id",
        "pool_name",
        "capabilities",
        "service",
        "total_capacity_gb",
        "free_capacity_gb",
        "allocated_capacity_gb",
        "provisioned_capacity_gb",
        "reserved_percentage",
        "max_over_subscription_ratio",
        "thin_provisioning_support",
        "thick_provisioning_support",
        "volume_backend_name",
        "vendor_name",
        "driver_version",
        "storage_protocol",
        "multiattach",
        "QoS_support",
    }
