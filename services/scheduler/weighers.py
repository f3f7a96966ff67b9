"""Cinder's weighers and weight handlers (``base_weight.py``, ``weights/``), reproduced.

Weighers (each a raw weight per pool, and a multiplier):

CapacityWeigher (``capacity_weight_multiplier``, default 1: spread; negative: stack)
    the pool's virtual free capacity (Cinder's capacity factors, thin or thick as the volume
    type asks, with the pool's over-subscription ratio). An unbounded pool weighs -1 with a
    positive multiplier and +inf otherwise, so it is least preferred either way; +inf is then
    replaced by the largest finite weight plus 100 times the spread (10000 if there is no
    spread) before normalising.
AllocatedCapacityWeigher (``allocated_capacity_weight_multiplier``, default -1: spread)
    the pool's ``allocated_capacity_gb``.
VolumeNumberWeigher (``volume_number_multiplier``, default -1: spread)
    the number of volumes on the pool (``PoolState.volume_count``; Cinder counts the volumes
    whose host is the pool's in its database).

OrderedHostWeightHandler (:func:`weigh`): for each weigher in turn, its raw weights are
normalised to ``(w - min) / (max - min)`` (all 0 when min == max), multiplied by its
multiplier and added to each pool's weight; the pools are sorted highest first, ties in the
order given. The first is Cinder's choice.

StochasticHostWeightHandler (:func:`choose`): Cinder does not normalise here ("self
normalising"): each pool's weight is the sum of multiplier times raw weight (after the
CapacityWeigher's +inf replacement), the pools keep the order given, and a draw
``random() * total`` picks the first pool whose running total exceeds it (the first pool if
none does, as Cinder's code does despite its comment). The weights are not shifted, so with
negative weights the draw is Cinder's too, however odd.

Ours: :func:`choose` answers the pools in the order to try, the chosen one first, then the
others by weight (Cinder uses the chosen one only). Where every raw CapacityWeigher weight is
+inf Cinder raises; here they all weigh the same. Not here: ChanceWeigher, GoodnessWeigher.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from services.scheduler.backend_state import PoolState
from services.scheduler.capacity import calculate_virtual_free_capacity, is_unbounded
from services.scheduler.filters import FilterRequest

__all__ = [
    "ALLOCATED_CAPACITY_WEIGHER",
    "CAPACITY_WEIGHER",
    "DEFAULT_WEIGHERS",
    "ORDERED",
    "STOCHASTIC",
    "VOLUME_NUMBER_WEIGHER",
    "WEIGHT_HANDLERS",
    "WeighedPool",
    "Weigher",
    "allocated_capacity_weigher",
    "allocated_capacity_weight",
    "capacity_weigher",
    "capacity_weight",
    "choose",
    "fix_infinite_weights",
    "normalize",
    "volume_number_weigher",
    "volume_number_weight",
    "weigh",
    "weigh_by_capacity",
]

_OFFSET_MULTIPLIER = 100
_OFFSET_MIN = 10000.0

#: Cinder's ``OrderedHostWeightHandler`` and ``StochasticHostWeightHandler``, by name.
ORDERED = "OrderedHostWeightHandler"
STOCHASTIC = "StochasticHostWeightHandler"
WEIGHT_HANDLERS = (ORDERED, STOCHASTIC)

#: A weigher's raw weight of one pool; the float is the weigher's multiplier.
RawWeight = Callable[[PoolState, FilterRequest, float], float]
#: Cinder's ``weigh_objects`` override: (raw weights, min, max) -> the same, adjusted.
Adjust = Callable[[Sequence[float], float, float], tuple[list[float], float, float]]


@dataclass(frozen=True)
class Weigher:
    """One weigher: its Cinder class name, raw weight and multiplier."""

    name: str
    raw: RawWeight
    multiplier: float
    #: Cinder's ``minval``/``maxval`` preset: bounds of the normalisation that the raw weights
    #: only widen (None: the weights' own).
    minval: float | None = None
    maxval: float | None = None
    adjust: Adjust | None = None


@dataclass(frozen=True)
class WeighedPool:
    pool: PoolState
    #: The sum of ``weights``: what the pools are sorted by.
    weight: float
    #: Each weigher's normalised weight times its multiplier, by weigher name.
    weights: Mapping[str, float] = field(default_factory=dict)
    #: Each weigher's multiplier times its raw weight, summed: what the stochastic handler
    #: draws by.
    raw_weight: float = 0.0
    #: The pool's place in the list weighed.
    index: int = 0


def capacity_weight(pool: PoolState, request: FilterRequest, multiplier: float) -> float:
    """The raw CapacityWeigher weight of one pool."""
    if is_unbounded(pool.free_capacity_gb) or is_unbounded(pool.total_capacity_gb):
        return -1.0 if multiplier > 0 else math.inf
    return calculate_virtual_free_capacity(
        total=pool.total_capacity_gb,
        free=pool.free_capacity_gb,
        provisioned=pool.provisioned_capacity_gb,
        thin_support=pool.thin_provisioning_support,
        max_over_subscription_ratio=pool.max_over_subscription_ratio,
        reserved_percentage=pool.reserved_percentage,
        thin=request.thin,
    )


def allocated_capacity_weight(pool: PoolState, request: FilterRequest, multiplier: float) -> float:
    """The raw AllocatedCapacityWeigher weight: the capacity allocated on the pool."""
    return pool.allocated_capacity_gb


def volume_number_weight(pool: PoolState, request: FilterRequest, multiplier: float) -> float:
    """The raw VolumeNumberWeigher weight: the volumes on the pool."""
    return float(pool.volume_count)


def fix_infinite_weights(
    weights: Sequence[float], low: float, high: float
) -> tuple[list[float], float, float]:
    """CapacityWeigher's ``weigh_objects``: (weights, min, max) with every +inf replaced by a
    finite maximum."""
    if high != math.inf:
        return list(weights), low, high
    finite = [w for w in weights if w != math.inf]
    if not finite:
        return [0.0] * len(weights), 0.0, 0.0
    high = max(finite)
    offset = (high - low) * _OFFSET_MULTIPLIER
    high += _OFFSET_MIN if offset == 0.0 else offset
    return [high if w == math.inf else w for w in weights], low, high


def capacity_weigher(multiplier: float = 1.0) -> Weigher:
    return Weigher("CapacityWeigher", capacity_weight, multiplier, adjust=fix_infinite_weights)


def allocated_capacity_weigher(multiplier: float = -1.0) -> Weigher:
    return Weigher("AllocatedCapacityWeigher", allocated_capacity_weight, multiplier)


def volume_number_weigher(multiplier: float = -1.0) -> Weigher:
    return Weigher("VolumeNumberWeigher", volume_number_weight, multiplier)


#: The weighers with Cinder's default multipliers.
CAPACITY_WEIGHER = capacity_weigher()
ALLOCATED_CAPACITY_WEIGHER = allocated_capacity_weigher()
VOLUME_NUMBER_WEIGHER = volume_number_weigher()
#: Cinder's ``scheduler_default_weighers``.
DEFAULT_WEIGHERS: tuple[Weigher, ...] = (CAPACITY_WEIGHER,)


def normalize(
    weights: Sequence[float], minval: float | None = None, maxval: float | None = None
) -> list[float]:
    """Cinder's ``normalize``: min-max to [0, 1] (bounds: the weights' own unless given);
    all 0 when min == max."""
    if not weights:
        return []
    high = float(max(weights) if maxval is None else maxval)
    low = float(min(weights) if minval is None else minval)
    if low == high:
        return [0.0] * len(weights)
    return [(w - low) / (high - low) for w in weights]


def _weigh_objects(
    weigher: Weigher, pools: Sequence[PoolState], request: FilterRequest
) -> tuple[list[float], float, float]:
    """Cinder's ``BaseWeigher.weigh_objects``: the raw weights and their bounds."""
    weights = [weigher.raw(pool, request, weigher.multiplier) for pool in pools]
    low = min(weights) if weigher.minval is None else min(weigher.minval, *weights)
    high = max(weights) if weigher.maxval is None else max(weigher.maxval, *weights)
    if weigher.adjust is not None:
        return weigher.adjust(weights, low, high)
    return weights, low, high


def weigh(
    pools: Sequence[PoolState], request: FilterRequest, weighers: Sequence[Weigher]
) -> list[WeighedPool]:
    """Cinder's OrderedHostWeightHandler: the pools with their weights, highest first."""
    if not pools:
        return []
    contributions: list[dict[str, float]] = [{} for _ in pools]
    raw_weights = [0.0] * len(pools)
    for weigher in weighers:
        weights, low, high = _weigh_objects(weigher, pools, request)
        for i, normalised in enumerate(normalize(weights, low, high)):
            share = weigher.multiplier * normalised
            contributions[i][weigher.name] = contributions[i].get(weigher.name, 0.0) + share
            raw_weights[i] += weigher.multiplier * weights[i]
    weighed = [
        WeighedPool(pool, sum(shares.values()), shares, raw, index)
        for index, (pool, shares, raw) in enumerate(
            zip(pools, contributions, raw_weights, strict=True)
        )
    ]
    return sorted(weighed, key=lambda w: w.weight, reverse=True)


def weigh_by_capacity(
    pools: Sequence[PoolState], request: FilterRequest, multiplier: float
) -> list[WeighedPool]:
    """``weigh`` with the CapacityWeigher alone (what the scheduler ran before the registry)."""
    return weigh(pools, request, (capacity_weigher(multiplier),))


def _by_weight(weighed: Sequence[WeighedPool]) -> list[WeighedPool]:
    return sorted(sorted(weighed, key=lambda w: w.index), key=lambda w: w.weight, reverse=True)


def _stochastic_index(weighed: Sequence[WeighedPool], rng: random.Random) -> int:
    """Cinder's lottery over the pools in the order weighed: the index drawn."""
    table: list[float] = []
    total = 0.0
    for w in weighed:
        total += w.raw_weight
        table.append(total)
    winning_value = rng.random() * total
    for i, bound in enumerate(table):
        if bound > winning_value:
            return i
    return 0


def choose(weighed: Sequence[WeighedPool], handler: str, rng: random.Random) -> list[WeighedPool]:
    """The pools in the order to try, by the weight handler named: Ordered: by weight;
    Stochastic: the pool drawn first, then the others by weight."""
    if handler == ORDERED:
        return _by_weight(weighed)
    if handler != STOCHASTIC:
        raise ValueError(f"Unknown weight handler {handler!r}; valid: {', '.join(WEIGHT_HANDLERS)}")
    if not weighed:
        return []
    in_order = sorted(weighed, key=lambda w: w.index)
    winner = in_order[_stochastic_index(in_order, rng)]
    return [winner, *(w for w in _by_weight(weighed) if w is not winner)]
