"""Cinder's scheduler test fixtures as pool states: ``FakeBackendState``'s defaults
(:func:`backend_state`) and ``fakes.SERVICE_STATES`` (:func:`service_states`), the five hosts
every Cinder weigher test weighs, as its ``FakeHostManager`` turns them into pools."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping
from typing import Any

from services.scheduler.backend_state import PoolState
from services.scheduler.capacity import INFINITE, UNKNOWN, calculate_max_over_subscription_ratio

_FIELDS = {f.name for f in dataclasses.fields(PoolState)}
_T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def backend_state(host: str = "host1", pool_name: str = "pool0", **changes: Any) -> PoolState:
    """A pool as Cinder's ``FakeBackendState(host, attributes)`` after ``BackendState``'s
    defaults (total 0, free 0, nothing allocated or provisioned, ratio 1.0, neither thin nor
    thick, no reserve), pool ``host#pool_name``. Cinder's default free capacity is None,
    which a PoolState cannot hold: 0 here."""
    values: dict[str, Any] = dict(
        backend=host,
        pool_name=pool_name,
        availability_zone="nova",
        address="127.0.0.1:1",
        total_capacity_gb=0.0,
        free_capacity_gb=0.0,
        allocated_capacity_gb=0.0,
        provisioned_capacity_gb=0.0,
        thin_provisioning_support=False,
        thick_provisioning_support=False,
        max_over_subscription_ratio=1.0,
        reserved_percentage=0,
        capabilities={},
    )
    if "updated" in _FIELDS:  # a PoolState of before issue 12
        values["updated"] = _T0
    values.update(changes)
    return PoolState(**values)


#: ``cinder/tests/unit/scheduler/fakes.py`` SERVICE_STATES (the reported values; the ratios
#: as the strings reported), with the zones of ``mock_host_manager_db_calls``.
SERVICE_STATES: dict[str, dict[str, Any]] = {
    "host1": dict(
        total_capacity_gb=1024,
        free_capacity_gb=1024,
        allocated_capacity_gb=0,
        provisioned_capacity_gb=0,
        max_over_subscription_ratio="1.0",
        thin_provisioning_support=False,
        thick_provisioning_support=True,
        reserved_percentage=10,
        volume_backend_name="lvm1",
        zone="zone1",
    ),
    "host2": dict(
        total_capacity_gb=2048,
        free_capacity_gb=300,
        allocated_capacity_gb=1748,
        provisioned_capacity_gb=1748,
        max_over_subscription_ratio="1.5",
        thin_provisioning_support=True,
        thick_provisioning_support=False,
        reserved_percentage=10,
        volume_backend_name="lvm2",
        zone="zone1",
    ),
    "host3": dict(
        total_capacity_gb=512,
        free_capacity_gb=256,
        allocated_capacity_gb=256,
        provisioned_capacity_gb=256,
        max_over_subscription_ratio="2.0",
        thin_provisioning_support=False,
        thick_provisioning_support=True,
        reserved_percentage=0,
        volume_backend_name="lvm3",
        zone="zone2",
    ),
    "host4": dict(
        total_capacity_gb=2048,
        free_capacity_gb=200,
        allocated_capacity_gb=1848,
        provisioned_capacity_gb=2047,
        max_over_subscription_ratio="1.0",
        thin_provisioning_support=True,
        thick_provisioning_support=False,
        reserved_percentage=5,
        volume_backend_name="lvm4",
        zone="zone3",
    ),
    "host5": dict(
        total_capacity_gb=INFINITE,
        free_capacity_gb=UNKNOWN,
        allocated_capacity_gb=1548,
        provisioned_capacity_gb=1548,
        max_over_subscription_ratio="1.0",
        thin_provisioning_support=True,
        thick_provisioning_support=False,
        reserved_percentage=5,
        # no volume_backend_name: Cinder's DEFAULT_POOL_NAME
        zone="zone3",
    ),
}

#: Cinder's ``CONF.max_over_subscription_ratio`` default.
GLOBAL_RATIO = "20.0"


def pool_from_state(host: str, state: Mapping[str, Any], volume_count: int = 0) -> PoolState:
    """The pool Cinder's host manager makes of one legacy (pool-less) host's report: pool
    named after its ``volume_backend_name`` (``_pool0`` without), ratio from
    ``calculate_max_over_subscription_ratio``."""
    ratio = calculate_max_over_subscription_ratio(
        thin_provisioning_support=state["thin_provisioning_support"],
        total_capacity_gb=state["total_capacity_gb"],
        free_capacity_gb=state["free_capacity_gb"],
        allocated_capacity_gb=state["allocated_capacity_gb"],
        provisioned_capacity_gb=state["provisioned_capacity_gb"],
        max_over_subscription_ratio=state["max_over_subscription_ratio"],
        global_max_over_subscription_ratio=GLOBAL_RATIO,
    )
    name = state.get("volume_backend_name", "_pool0")
    return backend_state(
        host,
        name,
        availability_zone=state["zone"],
        total_capacity_gb=float(state["total_capacity_gb"]),
        free_capacity_gb=float(state["free_capacity_gb"]),
        allocated_capacity_gb=float(state["allocated_capacity_gb"]),
        provisioned_capacity_gb=float(state["provisioned_capacity_gb"]),
        thin_provisioning_support=state["thin_provisioning_support"],
        thick_provisioning_support=state["thick_provisioning_support"],
        max_over_subscription_ratio=ratio,
        reserved_percentage=state["reserved_percentage"],
        capabilities={"volume_backend_name": name},
        volume_count=volume_count,
    )


def service_states(
    overrides: Mapping[str, Mapping[str, Any] | None] | None = None,
) -> list[PoolState]:
    """The five hosts' pools, in Cinder's order; ``overrides`` replaces a host's report
    (``None`` deletes it, as ``del host_manager.service_states['host5']``). VolumeNumber's
    fake count: host N has N volumes."""
    states: dict[str, Mapping[str, Any] | None] = dict(SERVICE_STATES)
    for host, override in (overrides or {}).items():
        zone = SERVICE_STATES.get(host, {}).get("zone", "nova")
        states[host] = None if override is None else {"zone": zone, **override}
    return [
        pool_from_state(host, state, volume_count=int(host.removeprefix("host")))
        for host, state in states.items()
        if state is not None
    ]
