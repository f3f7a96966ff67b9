"""Cinder's CapacityWeigher and the weight handler's min-max normalisation.

Raw weight of a pool: its virtual free capacity (Cinder's capacity factors, thin or thick as
the volume type asks). An unbounded pool (``'infinite'``/``'unknown'``) weighs -1 with a
positive multiplier and +inf otherwise, so it is least preferred either way; +inf is then
replaced by the largest finite weight plus 100 times the spread (10000 if there is no spread).
Weights are normalised to ``(w - min) / (max - min)`` (all 0 when min == max), multiplied by
``capacity_weight_multiplier``, and sorted highest first; ties keep the pools' order.

Where every raw weight is +inf Cinder raises; here they all weigh the same.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from services.scheduler.backend_state import PoolState
from services.scheduler.capacity import calculate_capacity_factors, is_unbounded
from services.scheduler.filters import FilterRequest

__all__ = [
    "WeighedPool",
    "capacity_weight",
    "fix_infinite_weights",
    "normalize",
    "weigh_by_capacity",
]

_OFFSET_MULTIPLIER = 100
_OFFSET_MIN = 10000.0


@dataclass(frozen=True)
class WeighedPool:
    pool: PoolState
    #: Normalised weight times the multiplier.
    weight: float


def capacity_weight(pool: PoolState, request: FilterRequest, multiplier: float) -> float:
    """The raw CapacityWeigher weight of one pool."""
    if is_unbounded(pool.free_capacity_gb) or is_unbounded(pool.total_capacity_gb):
        return -1.0 if multiplier > 0 else math.inf
    return calculate_capacity_factors(
        total=pool.total_capacity_gb,
        free=pool.free_capacity_gb,
        provisioned=pool.provisioned_capacity_gb,
        thin_support=pool.thin_provisioning_support,
        max_over_subscription_ratio=pool.max_over_subscription_ratio,
        reserved_percentage=pool.reserved_percentage,
        thin=request.thin,
    ).virtual_free_capacity


def fix_infinite_weights(weights: Sequence[float]) -> tuple[list[float], float, float]:
    """(weights, min, max) with every +inf replaced by a finite maximum, as Cinder does."""
    if not weights:
        return [], 0.0, 0.0
    low, high = min(weights), max(weights)
    if high != math.inf:
        return list(weights), low, high
    finite = [w for w in weights if w != math.inf]
    if not finite:
        return [0.0] * len(weights), 0.0, 0.0
    high = max(finite)
    high += (high - low) * _OFFSET_MULTIPLIER or _OFFSET_MIN
    return [high if w == math.inf else w for w in weights], low, high


def normalize(weights: Sequence[float], low: float, high: float) -> list[float]:
    """Cinder's ``normalize``: min-max to [0, 1]; all 0 when min == max."""
    if low == high:
        return [0.0] * len(weights)
    return [(w - low) / (high - low) for w in weights]


def weigh_by_capacity(
    pools: Sequence[PoolState], request: FilterRequest, multiplier: float
) -> list[WeighedPool]:
    """The pools with their final weights, highest first (the first is Cinder's choice)."""
    raw = [capacity_weight(pool, request, multiplier) for pool in pools]
    fixed, low, high = fix_infinite_weights(raw)
    weighed = [
        WeighedPool(pool, multiplier * n)
        for pool, n in zip(pools, normalize(fixed, low, high), strict=True)
    ]
    return sorted(weighed, key=lambda w: w.weight, reverse=True)
