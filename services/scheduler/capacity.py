"""Cinder's capacity arithmetic (``cinder/scheduler/sched_utils.py``), reproduced.

Capacities are floats in GiB. A capacity the backend cannot state is :data:`INFINITE`
(``math.inf``, Cinder's ``'infinite'``) or :data:`UNKNOWN` (``math.nan``, Cinder's
``'unknown'``); :func:`is_unbounded` is the one test for either, and Cinder treats them alike
everywhere but in the JsonFilter, which sees the words (:func:`cinder_capacity`).

* :func:`calculate_capacity_factors`: the reserve (``floor(total * reserved%)``) comes off the
  total; thin pools (a thin type on a pool with thin provisioning support) multiply what is
  left by the over-subscription ratio; both paths subtract what is provisioned; a thick pool
  never offers more than its reported free space. Results are rounded to 2 decimals as
  Cinder's ``_limit`` rounds them.
* :func:`calculate_max_over_subscription_ratio`: 1.0 without thin provisioning support or with
  an unbounded capacity; the reported ratio, else the global one; ``'auto'`` is
  ``1 + provisioned / (used + 1)`` (20 while nothing is provisioned).

Where Cinder would raise (a ratio string that is not a number), so does this.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = [
    "AUTO",
    "INFINITE",
    "INITIAL_AUTO_MOSR",
    "UNKNOWN",
    "CapacityFactors",
    "calculate_capacity_factors",
    "calculate_max_over_subscription_ratio",
    "calculate_virtual_free_capacity",
    "cinder_capacity",
    "is_unbounded",
]

#: Cinder's ``'infinite'`` capacity.
INFINITE: float = math.inf
#: Cinder's ``'unknown'`` capacity.
UNKNOWN: float = math.nan
#: The ``max_over_subscription_ratio`` that asks for the automatic ratio.
AUTO = "auto"
#: Cinder's ``INITIAL_AUTO_MOSR``: the automatic ratio of a pool with nothing provisioned.
INITIAL_AUTO_MOSR = 20.0


def is_unbounded(value: float) -> bool:
    """True for Cinder's ``'infinite'`` or ``'unknown'`` capacity (:data:`INFINITE`,
    :data:`UNKNOWN`)."""
    return math.isinf(value) or math.isnan(value)


def cinder_capacity(value: float) -> float | str:
    """The capacity as Cinder holds it: ``'infinite'``, ``'unknown'`` or the number."""
    if math.isnan(value):
        return "unknown"
    if math.isinf(value):
        return "infinite"
    return value


@dataclass(frozen=True)
class CapacityFactors:
    """Cinder's capacity factors of one pool for one request."""

    #: The reported total.
    total_capacity: float
    #: The reported free capacity.
    free_capacity: float
    #: ``floor(total * reserved_percentage / 100)``.
    reserved_capacity: float
    #: Total less the reserve.
    total_reserved_available_capacity: float
    #: The above times the over-subscription ratio on the thin path.
    total_available_capacity: float
    provisioned_capacity: float
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
    """Cinder's ``calculate_capacity_factors`` (bounded capacities only)."""
    # Cinder multiplies by the fraction; the order matters at floor() boundaries.
    reserved = float(math.floor(total * (float(reserved_percentage) / 100)))
    total_reserved_available = total - reserved
    thin_path = thin and thin_support
    if thin_path:
        total_available = total_reserved_available * max_over_subscription_ratio
        calculated_free = total_available - provisioned
        virtual_free = calculated_free
    else:
        total_available = total_reserved_available
        calculated_free = total_available - provisioned
        virtual_free = free if free < calculated_free else calculated_free
    if total_available:
        provisioned_ratio = provisioned / total_available
        free_percent = (virtual_free / total_available) * 100
    else:
        provisioned_ratio = 0.0
        free_percent = 0.0
    return CapacityFactors(
        total_capacity=float(total),
        free_capacity=free,
        reserved_capacity=reserved,
        total_reserved_available_capacity=round(total_reserved_available, 2),
        total_available_capacity=round(total_available, 2),
        provisioned_capacity=provisioned,
        calculated_free_capacity=round(calculated_free, 2),
        virtual_free_capacity=round(virtual_free, 2),
        free_percent=round(free_percent, 2),
        provisioned_ratio=round(provisioned_ratio, 2),
        max_over_subscription_ratio=max_over_subscription_ratio if thin_path else None,
        provisioned_type="thin" if thin_path else "thick",
    )


def calculate_virtual_free_capacity(
    *,
    total: float,
    free: float,
    provisioned: float,
    thin_support: bool,
    max_over_subscription_ratio: float,
    reserved_percentage: float,
    thin: bool,
) -> float:
    """Cinder's ``calculate_virtual_free_capacity``: the factors' virtual free capacity."""
    return calculate_capacity_factors(
        total=total,
        free=free,
        provisioned=provisioned,
        thin_support=thin_support,
        max_over_subscription_ratio=max_over_subscription_ratio,
        reserved_percentage=reserved_percentage,
        thin=thin,
    ).virtual_free_capacity


def calculate_max_over_subscription_ratio(
    *,
    thin_provisioning_support: bool,
    total_capacity_gb: float,
    free_capacity_gb: float,
    allocated_capacity_gb: float = 0.0,
    provisioned_capacity_gb: float | None = None,
    max_over_subscription_ratio: float | str | None,
    global_max_over_subscription_ratio: float | str,
) -> float:
    """Cinder's ``calculate_max_over_subscription_ratio`` of one reported pool.

    ``provisioned_capacity_gb`` None (not reported) is the allocated capacity; a reported ratio
    that is empty, 0 or None is the global one; either may be :data:`AUTO` or a number as a
    string. Computed when the pool reports, not after the scheduler consumed from it.
    """
    if not thin_provisioning_support:
        return 1.0
    if is_unbounded(total_capacity_gb) or is_unbounded(free_capacity_gb):
        return 1.0
    provisioned = provisioned_capacity_gb
    if provisioned is None:
        provisioned = allocated_capacity_gb
    ratio = max_over_subscription_ratio or global_max_over_subscription_ratio
    if ratio == AUTO:
        if provisioned != 0:
            used = total_capacity_gb - free_capacity_gb
            return 1 + float(provisioned) / (used + 1)
        return INITIAL_AUTO_MOSR
    return float(ratio)
