"""Pure logic of the RBD driver: feature selection, capacity math, monitor addresses, clone
policy. No cluster needed (the driver's behaviour on a real one: tests/e2e/test_rbd_driver.py)."""

from __future__ import annotations

from cindermesh.settings import BackendSettings, DriverKind
from services.volume.drivers.base import ClonePolicy
from services.volume.drivers.rbd import (
    DEEP_FLATTEN,
    EXCLUSIVE_LOCK,
    FAST_DIFF,
    GIB,
    JOURNALING,
    LAYERING,
    OBJECT_MAP,
    PoolStats,
    RbdDriver,
    expand,
    feature_names,
    parse_mon_addrs,
    parse_pool_stats,
    pool_capacity,
    select_features,
)

ALL = 4095
CEPH_DEFAULT = 61  # layering, exclusive-lock, object-map, fast-diff, deep-flatten


def test_features_are_the_five_when_the_cluster_allows_them() -> None:
    features = select_features(ALL, CEPH_DEFAULT)
    assert feature_names(features) == [
        "layering",
        "exclusive-lock",
        "object-map",
        "fast-diff",
        "deep-flatten",
    ]


def test_features_never_include_journaling_nor_more_than_the_library_supports() -> None:
    assert not select_features(ALL, CEPH_DEFAULT | JOURNALING) & JOURNALING
    assert select_features(LAYERING | EXCLUSIVE_LOCK, CEPH_DEFAULT) == LAYERING | EXCLUSIVE_LOCK


def test_features_unset_mean_layering_only_as_cinder() -> None:
    assert select_features(ALL, None) == LAYERING
    assert select_features(ALL, 0) == LAYERING


def test_feature_dependencies_are_kept() -> None:
    # object-map needs exclusive-lock, fast-diff needs object-map
    assert select_features(ALL, LAYERING | OBJECT_MAP | FAST_DIFF) == LAYERING
    assert select_features(ALL, LAYERING | EXCLUSIVE_LOCK | FAST_DIFF) == LAYERING | EXCLUSIVE_LOCK
    assert (
        select_features(ALL, LAYERING | EXCLUSIVE_LOCK | OBJECT_MAP | DEEP_FLATTEN)
        == LAYERING | EXCLUSIVE_LOCK | OBJECT_MAP | DEEP_FLATTEN
    )
    assert select_features(ALL, CEPH_DEFAULT) & FAST_DIFF


def test_capacity_without_quota_is_max_avail_and_dynamic_total() -> None:
    stats = PoolStats(
        stored_bytes=2 * GIB,
        max_avail_bytes=8 * GIB,
        cluster_total_bytes=30 * GIB,
        quota_max_bytes=0,
    )
    assert pool_capacity(stats) == (8.0, 10.0)
    assert pool_capacity(stats, dynamic_total=False) == (8.0, 30.0)


def test_capacity_with_a_quota_is_what_the_quota_leaves() -> None:
    stats = PoolStats(
        stored_bytes=3 * GIB,
        max_avail_bytes=100 * GIB,
        cluster_total_bytes=200 * GIB,
        quota_max_bytes=5 * GIB,
    )
    assert pool_capacity(stats, dynamic_total=False) == (2.0, 5.0)
    assert pool_capacity(stats) == (2.0, 5.0)
    full = PoolStats(
        stored_bytes=6 * GIB,
        max_avail_bytes=100 * GIB,
        cluster_total_bytes=200 * GIB,
        quota_max_bytes=5 * GIB,
    )
    assert pool_capacity(full, dynamic_total=False) == (0.0, 5.0)
    tight = PoolStats(
        stored_bytes=1 * GIB,
        max_avail_bytes=1 * GIB,
        cluster_total_bytes=200 * GIB,
        quota_max_bytes=5 * GIB,
    )
    assert pool_capacity(tight, dynamic_total=False) == (1.0, 5.0)


def test_capacity_rounds_to_two_decimals() -> None:
    stats = PoolStats(
        stored_bytes=0,
        max_avail_bytes=int(3.456 * GIB),
        cluster_total_bytes=10 * GIB,
        quota_max_bytes=0,
    )
    assert pool_capacity(stats) == (3.46, 3.46)


def test_pool_stats_from_ceph_df_json() -> None:
    df = {
        "stats": {"total_bytes": 4 * GIB},
        "pools": [
            {"name": "other", "stats": {"stored": 1, "max_avail": 2}},
            {"name": "volumes", "stats": {"stored": 123, "bytes_used": 999, "max_avail": 456}},
        ],
    }
    stats = parse_pool_stats(df, {"quota_max_bytes": 0}, "volumes")
    assert stats == PoolStats(
        stored_bytes=123, max_avail_bytes=456, cluster_total_bytes=4 * GIB, quota_max_bytes=0
    )
    old = {
        "stats": {"total_bytes": 1},
        "pools": [{"name": "volumes", "stats": {"bytes_used": 7, "max_avail": 1}}],
    }
    assert parse_pool_stats(old, {}, "volumes").stored_bytes == 7


def test_monitor_addresses_v1_v2_and_ipv6() -> None:
    monmap = {
        "mons": [
            {"name": "a", "addr": "127.0.0.1:6789/0"},
            {
                "name": "b",
                "addr": "-",
                "public_addrs": {"addrvec": [{"type": "v2", "addr": "10.0.0.2:3300", "nonce": 0}]},
            },
            {"name": "c", "addr": "[2001:db8::1]:6789/0"},
        ]
    }
    assert parse_mon_addrs(monmap) == (
        ["127.0.0.1", "10.0.0.2", "2001:db8::1"],
        ["6789", "3300", "6789"],
    )


def test_clone_policy_as_cinder_rbd_max_clone_depth() -> None:
    policy = ClonePolicy(max_clone_depth=5)
    assert not policy.full_copy
    assert not policy.flatten_clone(0)
    assert not policy.flatten_clone(4)
    assert policy.flatten_clone(5)
    assert ClonePolicy(max_clone_depth=0).full_copy
    backend = BackendSettings(rbd_max_clone_depth=2, rbd_flatten_volume_from_snapshot=True)
    assert ClonePolicy.from_settings(backend) == ClonePolicy(
        flatten_volume_from_snapshot=True, max_clone_depth=2
    )


async def test_unreachable_driver_reports_down_with_no_capacity() -> None:
    driver = RbdDriver(BackendSettings(name="rbd-1", driver=DriverKind.RBD, rbd_pool="volumes"))
    assert driver.backend_state == "down"
    stats = await driver.get_capacity()
    assert (stats.backend_state, stats.total_capacity_gb, stats.free_capacity_gb) == (
        "down",
        0.0,
        0.0,
    )
    assert stats.location_info == "ceph:/etc/ceph/ceph.conf::admin:volumes"
    await driver.close()


def test_settings_take_what_deploy_ceph_up_prints() -> None:
    env = {"CEPH_CONF": "/s/ceph.conf"}
    assert expand("${CEPH_CONF:-data/ceph/ceph.conf}", env) == "/s/ceph.conf"
    assert expand("${CEPH_KEYRING:-data/ceph/k}", env) == "data/ceph/k"
    assert expand("${CEPH_CONF}", {}) == ""
    assert expand("/etc/ceph/ceph.conf", env) == "/etc/ceph/ceph.conf"
