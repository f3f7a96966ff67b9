"""SameBackendFilter and DifferentBackendFilter: Cinder's AffinityFilterTestCase
(``test_host_filters.py``) case by case. Cinder's cases name backend states by bare hosts
(``host1``, ``host1:pool0``) that no pool of ours has (a pool id always has ``#pool``), so the
pool here is a stand-in with that id: the checks read nothing else. The hint is what the
scheduler resolved (the hosts of the hinted volumes that exist); Cinder's cases of hints that
are not volume ids are the api's schema here."""

from types import SimpleNamespace
from typing import cast

import pytest

from services.scheduler.backend_state import PoolState
from services.scheduler.filters import (
    DIFFERENT_BACKEND_FILTER,
    SAME_BACKEND_FILTER,
    FilterRequest,
    different_backend_check,
    host_matches,
    same_backend_check,
)

from .cinder_hosts import backend_state


def state(host: str) -> PoolState:
    """Cinder's ``FakeBackendState(host, {})``, as far as the affinity filters look."""
    return cast(PoolState, SimpleNamespace(pool_id=host))


def hints(**changes: tuple[str, ...] | None) -> FilterRequest:
    return FilterRequest(volume_id="v1", size_gb=1, **changes)  # type: ignore[arg-type]


# (backend state's host, hosts of the hinted volumes (None: no hint), passes)
DIFFERENT_CASES = [
    pytest.param("host1:pool0", ("host1:pool1",), True, id="test_different_filter_passes"),
    pytest.param(
        "host1:pool0", ("host1",), True, id="test_different_filter_legacy_volume_hint_passes"
    ),
    pytest.param("host2", ("host2",), False, id="test_different_filter_non_list_fails"),
    pytest.param("host1", ("host1",), False, id="test_different_filter_fails"),
    pytest.param("host1", None, True, id="test_different_filter_handles_none"),
    pytest.param("host1", (), True, id="test_different_filter_handles_deleted_instance"),
    pytest.param(
        "host1#pool0",
        ("host1:pool1", "host1:pool3"),
        True,
        id="test_different_filter_handles_multiple_uuids",
    ),
]

SAME_CASES = [
    pytest.param("host1", ("host1",), True, id="test_same_filter_no_list_passes"),
    pytest.param("host1#pool0", ("host1#pool0",), True, id="test_same_filter_passes"),
    pytest.param("host1#pool0", ("host1",), False, id="test_same_filter_legacy_vol_fails"),
    pytest.param("host1#pool0", ("host1#pool1",), False, id="test_same_filter_fails"),
    pytest.param("host1", ("host1", "host2"), True, id="test_same_filter_vol_list_pass"),
    pytest.param("host1", None, True, id="test_same_filter_handles_none"),
    pytest.param("host1", (), False, id="test_same_filter_handles_deleted_instance"),
]


@pytest.mark.parametrize(("host", "volumes", "expected"), DIFFERENT_CASES)
def test_different_backend_filter(
    host: str, volumes: tuple[str, ...] | None, expected: bool
) -> None:
    reason = different_backend_check(state(host), hints(different_host=volumes))
    assert reason == (
        None if expected else f"Host {host} holds a volume of the different_host hint"
    )
    assert DIFFERENT_BACKEND_FILTER.passes(state(host), hints(different_host=volumes)) is expected


@pytest.mark.parametrize(("host", "volumes", "expected"), SAME_CASES)
def test_same_backend_filter(host: str, volumes: tuple[str, ...] | None, expected: bool) -> None:
    reason = same_backend_check(state(host), hints(same_host=volumes))
    assert reason == (
        None if expected else f"Host {host} holds none of the volumes of the same_host hint"
    )
    assert SAME_BACKEND_FILTER.passes(state(host), hints(same_host=volumes)) is expected


# Cinder's _filter_host(Volume.host, value): (volume's host, value, matches)
HOST_MATCH_CASES = [
    ("h@b#p", "h@b#p", True),  # pool level: exact only
    ("h@b#p#x", "h@b#p", False),
    ("h#p@b", "h#p", False),
    ("h@b#p2", "h@b#p", False),
    ("h@b", "h@b#p", False),
    ("h@b#p", "h@b", True),  # backend level: exact or value#...
    ("h@b", "h@b", True),
    ("h@b2#p", "h@b", False),
    ("h@bb#p", "h@b", False),
    ("h@b#p", "h", True),  # host level: exact, value#... or value@...
    ("h#p", "h", True),
    ("h", "h", True),
    ("hh@b#p", "h", False),
    (None, "h", False),  # a volume without a host
]


@pytest.mark.parametrize(("volume_host", "value", "expected"), HOST_MATCH_CASES)
def test_host_matches(volume_host: str | None, value: str, expected: bool) -> None:
    assert host_matches(volume_host, value) is expected


@pytest.mark.parametrize(
    ("volumes", "same", "different"),
    [
        (("node1@file-1#pool1",), True, False),
        (("node1@file-1#pool2",), False, True),  # another pool of the backend
        (("node1@file-1",), False, True),  # a legacy host without a pool
        (("node2@file-2#pool1", "node1@file-1#pool1"), True, False),
    ],
)
def test_real_pools_match_at_pool_level(
    volumes: tuple[str, ...], same: bool, different: bool
) -> None:
    pool = backend_state("node1@file-1", "pool1")
    assert (same_backend_check(pool, hints(same_host=volumes)) is None) is same
    assert (different_backend_check(pool, hints(different_host=volumes)) is None) is different
