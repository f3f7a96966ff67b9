"""Cinder's capacity arithmetic (``sched_utils.calculate_capacity_factors``), reproduced.

Capacities are floats in GiB. A capacity the backend cannot state is ``math.inf`` (Cinder's
``'infinite'``) or ``math.nan`` (Cinder's ``'unknown'``); :func:`is_unbounded` tells both apart
from a number, and Cinder treats them alike.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["CapacityFactors", "calculate_capacity_factors", "is_unbounded"]


def is_unbounded(value: float) -> bool:
    """True for Cinder's ``'infinite'`` or ``'unknown'`` capacity."""
    return math.isinf(value) or math.isnan(value)


@dataclass(frozen=True)
class CapacityFactors:
    """What a pool can still take, each value rounded to 2 decimals as Cinder rounds it."""

    #: ``floor(total * reserved_percentage / 100)``.
    reserved_capacity: float
    #: Total less the reserve.
    total_reserved_available_capacity: float
    #: The above times the over-subscription ratio on the thin path.
    total_available_capacity: float
    #: ``total_available_capacity - provisioned``.
    calculated_free_capacity: float
    #: Thin: ``calculated_free``; thick: ``min(reported free, calculated_free)``.
    virtual_free_capacity: float
    free_percent: float
    provisioned_ratio: float
    #: ``None`` on the thick path.
    max_over_subscription_ratio: float | None
    #: ``"thin"`` or ``"thick"``.
    provisioned_type: str


def calculate_capacity_factors(
    *,
    total: float,
    free: float,
    provisioned: float,
    thin_support: bool,
    max_over_subscription_ratio: float,
    reserved_percentage: float,
    thin: bool,
) -> CapacityFactors:
    """Cinder's factors: the reserve comes off the total; thin pools multiply what is left by
    the over-subscription ratio; both paths subtract what is already provisioned."""
    # Cinder multiplies by the fraction; the order matters at floor() boundaries.
    reserved = float(math.floor(total * (reserved_percentage / 100)))
    total_reserved_available = total - reserved
    thin_path = thin and thin_support
    if thin_path:
        total_available = total_reserved_available * max_over_subscription_ratio
        calculated_free = total_available - provisioned
        virtual_free = calculated_free
    else:
        total_available = total_reserved_available
        calculated_free = total_available - provisioned
        virtual_free = min(free, calculated_free)
    if total_available:
        provisioned_ratio = provisioned / total_available
        free_percent = 100 * virtual_free / total_available
    else:
        provisioned_ratio = 0.0
        free_percent = 0.0
    return CapacityFactors(
        reserved_capacity=reserved,
        total_reserved_available_capacity=round(total_reserved_available, 2),
        total_available_capacity=round(total_available, 2),
        calculated_free_capacity=round(calculated_free, 2),
        virtual_free_capacity=round(virtual_free, 2),
        free_percent=round(free_percent, 2),
        provisioned_ratio=round(provisioned_ratio, 2),
        max_over_subscription_ratio=max_over_subscription_ratio if thin_path else None,
        provisioned_type="thin" if thin_path else "thick",
    )
