"""Builders of pool states and reports for the scheduler's tests."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from typing import Any

from services.scheduler.backend_state import BackendReport, PoolReport, PoolState

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)

_POOL = PoolState(
    backend="node1@file-1",
    pool_name="pool1",
    availability_zone="nova",
    address="127.0.0.1:1",
    total_capacity_gb=100.0,
    free_capacity_gb=100.0,
    allocated_capacity_gb=0.0,
    provisioned_capacity_gb=0.0,
    thin_provisioning_support=False,
    thick_provisioning_support=True,
    max_over_subscription_ratio=1.0,
    reserved_percentage=0,
    capabilities={},
)


def pool(**changes: Any) -> PoolState:
    return replace(_POOL, **changes)


def pool_report(**changes: Any) -> PoolReport:
    base = PoolReport(
        pool_name="pool1",
        total_capacity_gb=100.0,
        free_capacity_gb=100.0,
        allocated_capacity_gb=0.0,
        provisioned_capacity_gb=0.0,
        thin_provisioning_support=True,
        thick_provisioning_support=False,
        max_over_subscription_ratio=20.0,
        reserved_percentage=0,
        extra={},
    )
    return replace(base, **changes)


def backend_report(*pools: PoolReport, **changes: Any) -> BackendReport:
    base = BackendReport(
        backend="node1@file-1",
        volume_backend_name="file-1",
        availability_zone="nova",
        address="127.0.0.1:1",
        vendor_name="cindermesh",
        driver_version="1.0",
        storage_protocol="file",
        pools=pools or (pool_report(),),
    )
    return replace(base, **changes)
