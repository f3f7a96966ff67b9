"""What the scheduler decided for one placement attempt of a volume, kept with the volume
(``cindermesh.db.placements``) and shown to its owner at
``GET /v3/{project_id}/volumes/{volume_id}/placement`` (a cindermesh extension,
``docs/placement.md``).

The scheduler fills one :class:`PlacementAttempt` per attempt: the request it placed, the
backends it left out as disabled, each filter's pass (:class:`FilterOutcome`: the pools in, the
pools that passed and those rejected with the filter's own reason), the weighed candidates
(:class:`WeighedOutcome`) and the result. :func:`to_json` and :func:`from_json` are the stored
form: one JSON object with sorted keys, times as ISO 8601 (naive UTC, as the tables keep them).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

__all__ = [
    "DEFERRED",
    "ERROR",
    "NO_VALID_BACKEND",
    "PLACED",
    "RESULTS",
    "FilterOutcome",
    "PlacementAttempt",
    "WeighedOutcome",
    "from_json",
    "last_filter_of",
    "to_json",
]

PLACED: Final = "placed"
NO_VALID_BACKEND: Final = "no_valid_backend"
DEFERRED: Final = "deferred"
ERROR: Final = "error"
#: The results an attempt may have.
RESULTS: Final = (PLACED, NO_VALID_BACKEND, DEFERRED, ERROR)


@dataclass(frozen=True)
class FilterOutcome:
    """One filter's pass over the pools still in."""

    #: The filter's name, e.g. ``CapacityFilter``.
    name: str
    #: How many pools it was given.
    hosts_in: int
    #: The pools (``host@backend#pool``) that passed, in order.
    passed: tuple[str, ...]
    #: ``(pool, reason)`` of each pool it removed, the reason the filter's own.
    rejected: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class WeighedOutcome:
    """One candidate after weighing."""

    pool: str
    #: The total weight the handler ordered by.
    weight: float
    #: Each weigher's share: its normalised weight times its multiplier.
    weights: Mapping[str, float]


@dataclass(frozen=True)
class PlacementAttempt:
    #: 1-based.
    attempt: int
    decided_at: dt.datetime
    #: Which scheduler replica decided, e.g. ``127.0.0.1:18777``.
    scheduler: str
    #: What was placed: ``size_gb``, ``availability_zone``, ``volume_type``,
    #: ``extra_specs``, the scheduler hints (JSON values only).
    request: Mapping[str, object]
    #: Backends left out as disabled (or frozen).
    disabled: tuple[str, ...]
    filters: tuple[FilterOutcome, ...]
    #: The candidates in the order the weight handler took them.
    weighed: tuple[WeighedOutcome, ...]
    #: The pool chosen, or None.
    chosen: str | None
    #: One of :data:`RESULTS`.
    result: str
    #: ``""`` when placed; else Cinder's NoValidBackend text.
    reason: str
    #: The filter that removed the last candidate, if one did (:func:`last_filter_of`).
    last_filter: str | None
    #: Pools tried before this attempt, oldest first.
    retry_hosts: tuple[str, ...]
    #: Why the previous attempt failed (``""`` on the first).
    last_error: str


def last_filter_of(filters: Sequence[FilterOutcome]) -> str | None:
    """The first filter that passed no pool (it removed the last candidates), if one did.

    A filter given no pool removed nothing: when there was nothing to filter (every backend
    disabled, none reported), no filter is to blame and the answer is None."""
    for outcome in filters:
        if not outcome.passed:
            return outcome.name if outcome.hosts_in > 0 else None
    return None


def _filter_json(outcome: FilterOutcome) -> dict[str, Any]:
    return {
        "name": outcome.name,
        "hosts_in": outcome.hosts_in,
        "passed": list(outcome.passed),
        "rejected": [[pool, reason] for pool, reason in outcome.rejected],
    }


def _weighed_json(outcome: WeighedOutcome) -> dict[str, Any]:
    return {
        "pool": outcome.pool,
        "weight": outcome.weight,
        "weights": {name: float(value) for name, value in outcome.weights.items()},
    }


def to_json(attempt: PlacementAttempt) -> str:
    """The stored text: one JSON object, keys sorted (the same attempt, the same text)."""
    document = {
        "attempt": attempt.attempt,
        "decided_at": attempt.decided_at.isoformat(),
        "scheduler": attempt.scheduler,
        "request": dict(attempt.request),
        "disabled": list(attempt.disabled),
        "filters": [_filter_json(f) for f in attempt.filters],
        "weighed": [_weighed_json(w) for w in attempt.weighed],
        "chosen": attempt.chosen,
        "result": attempt.result,
        "reason": attempt.reason,
        "last_filter": attempt.last_filter,
        "retry_hosts": list(attempt.retry_hosts),
        "last_error": attempt.last_error,
    }
    # default=str: a value in the request that is not JSON (e.g. a Decimal) is kept as text
    # rather than failing the placement transaction that records it.
    return json.dumps(document, sort_keys=True, separators=(",", ":"), default=str)


def _optional_text(value: object) -> str | None:
    return None if value is None else str(value)


def from_json(text: str) -> PlacementAttempt:
    """The attempt :func:`to_json` stored; raises ValueError if ``text`` is not one."""
    try:
        data = json.loads(text)
        if not isinstance(data, dict):
            raise TypeError("not an object")
        return PlacementAttempt(
            attempt=int(data["attempt"]),
            decided_at=dt.datetime.fromisoformat(data["decided_at"]),
            scheduler=str(data["scheduler"]),
            request=dict(data["request"]),
            disabled=tuple(str(d) for d in data["disabled"]),
            filters=tuple(
                FilterOutcome(
                    name=str(f["name"]),
                    hosts_in=int(f["hosts_in"]),
                    passed=tuple(str(p) for p in f["passed"]),
                    rejected=tuple((str(p), str(r)) for p, r in f["rejected"]),
                )
                for f in data["filters"]
            ),
            weighed=tuple(
                WeighedOutcome(
                    pool=str(w["pool"]),
                    weight=float(w["weight"]),
                    weights={str(k): float(v) for k, v in w["weights"].items()},
                )
                for w in data["weighed"]
            ),
            chosen=_optional_text(data["chosen"]),
            result=str(data["result"]),
            reason=str(data["reason"]),
            last_filter=_optional_text(data["last_filter"]),
            retry_hosts=tuple(str(h) for h in data["retry_hosts"]),
            last_error=str(data["last_error"]),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise ValueError(f"not a stored placement attempt: {error}") from error
