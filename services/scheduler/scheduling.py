"""The scheduler's create-volume flow (Cinder's ``volume_create_scheduler``).

``scheduler.create_volume`` runs two steps, each a span:

``ExtractSchedulerSpec``
    Builds the filter request from the spec and counts the attempt (Cinder's
    ``_populate_retry``): attempt = attempts so far + 1; beyond ``scheduler_max_attempts``
    the volume cannot be placed (the one place where that rule lives). The scheduler hints'
    volumes (``same_host``/``different_host``) are read for their hosts. Undo: the volume goes
    to ``error`` with the reason, gives its quota back once and gets Cinder's user message,
    naming the filter that removed the last candidate (this undo runs whatever step failed),
    except when placement is only deferred (no backend has reported yet, or the database
    failed): the row then stays waiting, and the sweep tries again until
    ``placement_timeout`` has passed since the volume was accepted or last handed back.
``ScheduleCreateVolume``
    Leaves out the pools of disabled (or frozen) backends (``disabled.DisabledBackends``, read
    at most every ``disabled_refresh`` seconds; Cinder's scheduler ignores disabled services,
    so a volume with only those left has no valid backend), adds the capacity the volume rows
    claim (``claims``: every replica reads the same rows), filters
    (``scheduler.filter.<Name>`` spans), prefers pools not tried before, weighs
    (``scheduler.weigher.<Name>``), orders the candidates by the weight handler, and claims the
    first that still has room once re-read under its backend's lock, in the transaction that
    records the host, the hand-off deadline and the decision (``decision.PlacementAttempt``,
    readable at ``GET /v3/{p}/volumes/{id}/placement``). A volume another scheduler placed
    first is left to it. Then it hands the volume to the pool's volume manager, retrying with
    backoff while the manager is unreachable, until the deadline or, sooner, as soon as the
    backend stopped reporting while another pool would take the volume. A volume its manager
    never accepted is taken back (one attempt more, its pool tried; its claim goes with its
    host) and placed again. Undo: none: the claim is the row's host, given back by whoever
    clears it.

Choice on reschedules: Cinder's default filters let a reschedule land on the pool that just
failed (IgnoreAttemptedHostsFilter is not a default). We prefer untried pools when any pass the
filters, and fall back to the tried ones otherwise, so a one-backend deployment still retries
(a transient driver error) while a multi-backend one moves on from a failing backend.

Retry info (``RetryInfo``) means the same in both directions: attempts made and pools tried
before the one the receiver is about to make. The row holds the same numbers (see
``cindermesh.db.work``): a request whose numbers the row no longer has is stale and is left.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import logging
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from opentelemetry import trace

from cindermesh.db.engine import Database
from cindermesh.db.messages import Detail
from cindermesh.db.models import utcnow
from cindermesh.errors import BackendUnavailable, CindermeshError, NoValidBackend
from cindermesh.flow import Step, run_flow
from cindermesh.placement import (
    FilterOutcome,
    PlacementAttempt,
    WeighedOutcome,
    last_filter_of,
)
from cindermesh.scheduler_hints import SchedulerHints
from cindermesh.telemetry.tracing import tracer
from services.scheduler import claims, volume_rows
from services.scheduler.backend_state import BackendStates, PoolState
from services.scheduler.disabled import DisabledBackends
from services.scheduler.filters import (
    CAPACITY_FILTER,
    DEFAULT_FILTERS,
    FilterRequest,
    PoolFilter,
    filters_for,
)
from services.scheduler.manager_client import ManagerRefused, VolumeManagers
from services.scheduler.spec import RetryState, ScheduleRequest
from services.scheduler.weighers import DEFAULT_WEIGHERS, WeighedPool, Weigher, choose, weigh

__all__ = [
    "FLOW",
    "CreateVolumeState",
    "PlacementDeferred",
    "Scheduler",
    "SchedulerConfig",
    "filter_pools",
]

log = logging.getLogger(__name__)

FLOW = "scheduler.create_volume"
NO_VALID_BACKEND = "No valid backend was found."


@dataclass(frozen=True)
class SchedulerConfig:
    #: Attempts per volume, the first one included (Cinder's ``scheduler_max_attempts``).
    max_attempts: int = 3
    #: Seconds a placed volume's manager has to accept it (``WorkSettings.handoff_timeout``).
    handoff_timeout: float = 30.0
    #: Seconds a volume may wait for a backend to report (``WorkSettings.placement_timeout``).
    placement_timeout: float = 120.0
    #: Longest pause between two hand-off tries.
    handoff_backoff_max: float = 1.0
    #: Seconds the set of disabled backends is used before it is read again.
    disabled_refresh: float = 1.0
    filters: tuple[PoolFilter, ...] = DEFAULT_FILTERS
    weighers: tuple[Weigher, ...] = DEFAULT_WEIGHERS
    #: Cinder's ``scheduler_weight_handler`` (``registry.WeightHandlerName``).
    weight_handler: str = "OrderedHostWeightHandler"
    #: This replica, as the decisions it records name it (its address).
    name: str = ""


class PlacementDeferred(CindermeshError):
    """No backend has reported (yet): the volume waits instead of failing."""


@dataclass
class CreateVolumeState:
    """The flow's state: what each step produced."""

    request: ScheduleRequest
    filter_request: FilterRequest | None = None
    #: This attempt's number, 1-based.
    attempt: int = 0
    chosen: PoolState | None = None
    delivered: bool = False
    failure: BaseException | None = field(default=None, repr=False)
    #: The volume's scheduler hints (from its row).
    hints: SchedulerHints = field(default_factory=SchedulerHints)
    #: What this attempt decided, recorded with the volume.
    decision: PlacementAttempt | None = None
    #: The volume taken back from a manager that never accepted it: the next attempt.
    next_request: ScheduleRequest | None = None


def _reason(failure: BaseException | None) -> str:
    if isinstance(failure, CindermeshError):
        return failure.message
    if isinstance(failure, asyncio.CancelledError):
        return f"{NO_VALID_BACKEND} The scheduler stopped before the volume was placed."
    return f"{NO_VALID_BACKEND} Scheduling failed: {type(failure).__name__}: {failure}"


def filter_pools(
    pools: Sequence[PoolState],
    request: FilterRequest,
    filters: Sequence[PoolFilter],
    outcomes: list[FilterOutcome] | None = None,
) -> list[PoolState]:
    """Runs the filters in order, each in a ``scheduler.filter.<Name>`` span; each filter's
    pools in and out, with the reasons, are appended to ``outcomes``."""
    results: list[str] = []
    for pool_filter in filters:
        with tracer().start_as_current_span(f"scheduler.filter.{pool_filter.name}") as span:
            passed: list[PoolState] = []
            rejected: list[tuple[str, str]] = []
            for pool in pools:
                reason = pool_filter.check(pool, request)
                if reason is None:
                    passed.append(pool)
                else:
                    rejected.append((pool.pool_id, reason))
            span.set_attribute("scheduler.hosts_in", len(pools))
            span.set_attribute("scheduler.hosts_out", len(passed))
            span.set_attribute("scheduler.hosts", [p.pool_id for p in passed])
        if outcomes is not None:
            outcomes.append(
                FilterOutcome(
                    name=pool_filter.name,
                    hosts_in=len(pools),
                    passed=tuple(p.pool_id for p in passed),
                    rejected=tuple(rejected),
                )
            )
        log.debug("Filter %s returned %d host(s)", pool_filter.name, len(passed))
        results.append(f"{pool_filter.name}: (start: {len(pools)}, end: {len(passed)})")
        pools = passed
        if not pools:
            log.info(
                "Filtering removed all hosts for the request with volume ID '%s'. "
                "Filter results: %s",
                request.volume_id,
                ", ".join(results),
            )
            break
    return list(pools)


def _prefer_untried(pools: list[PoolState], tried: Sequence[str]) -> list[PoolState]:
    with tracer().start_as_current_span("scheduler.filter.PreferUntriedHosts") as span:
        untried = [p for p in pools if p.pool_id not in tried]
        chosen = untried or pools
        span.set_attribute("scheduler.hosts_in", len(pools))
        span.set_attribute("scheduler.hosts_out", len(chosen))
        span.set_attribute("scheduler.tried", list(tried))
    return chosen


def _enabled(pools: Sequence[PoolState], disabled: frozenset[str]) -> list[PoolState]:
    """The pools whose backend is not disabled, in a ``scheduler.filter.DisabledBackends``
    span when there is any to leave out."""
    if not disabled:
        return list(pools)
    with tracer().start_as_current_span("scheduler.filter.DisabledBackends") as span:
        enabled = [p for p in pools if p.backend not in disabled]
        span.set_attribute("scheduler.hosts_in", len(pools))
        span.set_attribute("scheduler.hosts_out", len(enabled))
        span.set_attribute("scheduler.disabled", sorted(disabled))
    if not enabled:
        log.info("Every reporting backend is disabled: %s", ", ".join(sorted(disabled)))
    return enabled


class NoRoomLeft(NoValidBackend):
    """Every candidate was filled by other placements before this one could claim it."""


class Scheduler:
    """Accepts schedules and runs each as a background flow; at most one per volume at a time
    in this process (the sweep and a reschedule may both offer the same volume)."""

    def __init__(
        self,
        states: BackendStates,
        db: Database,
        managers: VolumeManagers,
        config: SchedulerConfig,
        rng: random.Random | None = None,
    ) -> None:
        self.states = states
        self._db = db
        self._managers = managers
        self._config = config
        self._rng = rng or random.Random()
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self.disabled = DisabledBackends(db, config.disabled_refresh)

    def in_flight(self, volume_id: str) -> bool:
        return volume_id in self._tasks

    def submit(self, request: ScheduleRequest) -> asyncio.Task[None]:
        """Starts the flow in the background (the context, so the trace and request id, is
        copied into the task); a volume already being scheduled here keeps its task."""
        volume_id = request.spec.volume_id
        if (running := self._tasks.get(volume_id)) is not None:
            return running
        task = asyncio.get_running_loop().create_task(self.schedule(request))
        self._tasks[volume_id] = task

        def done(finished: asyncio.Task[None]) -> None:
            if self._tasks.get(volume_id) is finished:
                del self._tasks[volume_id]

        task.add_done_callback(done)
        return task

    async def schedule(self, request: ScheduleRequest) -> None:
        """Places the volume, again as long as its manager hands it back; a failure has been
        handled (row in error, or left waiting for the sweep) when this returns."""
        next_request: ScheduleRequest | None = request
        while next_request is not None:
            next_request = await self._attempt(next_request)

    async def _attempt(self, request: ScheduleRequest) -> ScheduleRequest | None:
        state = CreateVolumeState(request)
        steps = [
            Step("ExtractSchedulerSpec", self._recording(self._extract), self._fail_volume),
            Step("ScheduleCreateVolume", self._recording(self._place)),
        ]
        try:
            await run_flow(FLOW, steps, state)
        except CindermeshError as error:
            log.warning("Failed to schedule volume %s: %s", request.spec.volume_id, error)
        except Exception:
            log.exception("Failed to schedule volume %s", request.spec.volume_id)
        return state.next_request

    async def close(self, timeout: float = 5.0) -> None:
        """Lets running schedules finish for up to ``timeout`` seconds, then cancels them
        (what they had not placed waits in the database for the next scheduler)."""
        if not self._tasks:
            return
        _, pending = await asyncio.wait(set(self._tasks.values()), timeout=timeout)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    @staticmethod
    def _recording(
        execute: Callable[[CreateVolumeState], Awaitable[None]],
    ) -> Callable[[CreateVolumeState], Awaitable[None]]:
        async def run(state: CreateVolumeState) -> None:
            try:
                await execute(state)
            except BaseException as error:
                state.failure = error
                raise

        return run

    # ExtractSchedulerSpec

    async def _extract(self, state: CreateVolumeState) -> None:
        spec, retry = state.request.spec, state.request.retry
        hints = await volume_rows.hints_of(self._db, spec)
        state.hints = hints.given
        state.filter_request = FilterRequest(
            volume_id=spec.volume_id,
            size_gb=spec.size_gb,
            availability_zone=spec.availability_zone,
            extra_specs=spec.volume_type.extra_specs,
            source_backend=spec.source_backend,
            same_host=hints.same_host,
            different_host=hints.different_host,
            query=hints.given.query or None,
            tried_hosts=retry.hosts if retry else (),
            num_attempts=retry.num_attempts if retry else 0,
        )
        state.attempt = (retry.num_attempts if retry else 0) + 1
        trace.get_current_span().set_attribute("scheduler.attempt", state.attempt)
        if spec.source_backend:
            trace.get_current_span().set_attribute("scheduler.source_backend", spec.source_backend)
        if retry is not None and retry.hosts and retry.last_error:
            log.error(
                "Error scheduling %s from last vol-service: %s : %s",
                spec.volume_id,
                retry.hosts[-1],
                retry.last_error,
            )
        if state.attempt > self._config.max_attempts:
            raise NoValidBackend(
                f"{NO_VALID_BACKEND} Exceeded max scheduling attempts "
                f"{self._config.max_attempts} for resource {spec.volume_id}"
            )

    async def _fail_volume(self, state: CreateVolumeState) -> None:
        spec, failure = state.request.spec, state.failure
        if isinstance(failure, volume_rows.VolumeGone | asyncio.CancelledError):
            return  # someone else has the volume, or the next scheduler will
        if not isinstance(failure, NoValidBackend):
            waited = utcnow() - dt.timedelta(seconds=self._config.placement_timeout)
            if not await volume_rows.waiting_since_before(self._db, spec.volume_id, waited):
                log.info("Volume %s: placement deferred: %s", spec.volume_id, _reason(failure))
                return
        reason = _reason(failure)
        # Cinder's scheduler: NoValidBackend is "no backend available", anything else unknown.
        no_backend = isinstance(failure, NoValidBackend | PlacementDeferred)
        detail = Detail.NO_BACKEND_AVAILABLE if no_backend else Detail.UNKNOWN_ERROR
        result = "no_valid_backend" if no_backend else "error"
        decision = self._failed_decision(state, reason, result)
        if await volume_rows.mark_error(
            self._db, spec, reason, detail, decision=decision, filter_name=decision.last_filter
        ):
            log.warning("Volume %s: scheduling failed: %s", spec.volume_id, reason)

    # ScheduleCreateVolume

    def _candidates(
        self,
        state: CreateVolumeState,
        disabled: frozenset[str],
        claimed: dict[str, claims.PoolClaims],
    ) -> list[WeighedPool]:
        """The pools to try, in order: the reporting ones with the rows' claims, the disabled
        ones left out, filtered, untried first, weighed and ordered by the weight handler."""
        assert state.filter_request is not None
        request = state.filter_request
        # By name, so that equal weights go the same way in every replica and every run
        # (Cinder: in the order its host manager met the backends).
        live = sorted(self.states.pools(), key=lambda p: p.pool_id)
        if not live:
            raise PlacementDeferred(f"{NO_VALID_BACKEND} No backend has reported its capacity.")
        pools = claims.apply_claims(_enabled(live, disabled), claimed)
        outcomes: list[FilterOutcome] = []
        filters = filters_for(request, self._config.filters)
        pools = filter_pools(pools, request, filters, outcomes) if pools else []
        tried = state.request.retry.hosts if state.request.retry else ()
        if pools and tried:
            pools = _prefer_untried(pools, tried)
        weighed = self._weigh(pools, request)
        ordered = choose(weighed, self._config.weight_handler, self._rng) if weighed else []
        state.decision = self._decision(state, disabled, outcomes, ordered)
        if not ordered:
            reason = f"{NO_VALID_BACKEND} No weighed backends available"
            state.decision = _failed(state.decision, reason, "no_valid_backend")
            raise NoValidBackend(reason)
        return ordered

    def _weigh(self, pools: Sequence[PoolState], request: FilterRequest) -> list[WeighedPool]:
        names = ",".join(w.name for w in self._config.weighers)
        with tracer().start_as_current_span(f"scheduler.weigher.{names}") as span:
            weighed = weigh(pools, request, self._config.weighers)
            span.set_attribute(
                "scheduler.weights", [f"{w.pool.pool_id}={w.weight:.4f}" for w in weighed]
            )
        log.debug("Weighed %s", [(w.pool.pool_id, w.weight) for w in weighed])
        return weighed

    def _decision(
        self,
        state: CreateVolumeState,
        disabled: frozenset[str],
        outcomes: Sequence[FilterOutcome],
        ordered: Sequence[WeighedPool],
    ) -> PlacementAttempt:
        spec, retry = state.request.spec, state.request.retry or RetryState()
        return PlacementAttempt(
            attempt=state.attempt,
            decided_at=utcnow(),
            scheduler=self._config.name,
            request={
                "size_gb": spec.size_gb,
                "availability_zone": spec.availability_zone,
                "volume_type": spec.volume_type.name,
                "extra_specs": dict(spec.volume_type.extra_specs),
                "scheduler_hints": state.hints.as_json(),
                "source_backend": spec.source_backend,
            },
            disabled=tuple(sorted(disabled)),
            filters=tuple(outcomes),
            weighed=tuple(
                WeighedOutcome(pool=w.pool.pool_id, weight=w.weight, weights=dict(w.weights))
                for w in ordered
            ),
            chosen=None,
            result="placed",
            reason="",
            last_filter=last_filter_of(outcomes),
            retry_hosts=retry.hosts,
            last_error=retry.last_error,
        )

    def _failed_decision(
        self, state: CreateVolumeState, reason: str, result: str
    ) -> PlacementAttempt:
        if state.decision is not None:
            return _failed(state.decision, reason, result)
        empty = self._decision(state, frozenset(), (), ())
        return _failed(empty, reason, result)

    async def _place(self, state: CreateVolumeState) -> None:
        spec = state.request.spec
        retry = state.request.retry or RetryState()
        disabled = await self.disabled.current()
        ordered = self._candidates(state, disabled, await claims.read_claims(self._db))
        assert state.decision is not None and state.filter_request is not None
        request = state.filter_request
        chosen = await volume_rows.claim_and_record(
            self._db,
            spec,
            [w.pool for w in ordered],
            lambda pool: CAPACITY_FILTER.check(pool, request),
            retry.num_attempts,
            self._config.handoff_timeout,
            state.decision,
        )
        if chosen.pool is None:
            state.decision = _after_claims(state.decision, chosen.rejected)
            raise NoRoomLeft(
                f"{NO_VALID_BACKEND} The backends that passed the filters were filled by "
                "other placements meanwhile."
            )
        pool = chosen.pool
        state.chosen = pool
        span = trace.get_current_span()
        span.set_attribute("scheduler.backend", pool.backend)
        span.set_attribute("scheduler.pool", pool.pool_name)
        span.set_attribute("scheduler.host", pool.pool_id)
        span.set_attribute("volume.size", spec.size_gb)
        log.debug("Choosing %s", pool.pool_id)
        failure = await self._hand_off(state, pool, retry)
        state.delivered = True  # from here on the row, not this flow, says where the volume is
        if failure is None:
            return
        span.set_attribute("scheduler.handoff_failed", failure)
        taken_back = await volume_rows.take_back(
            self._db, spec.volume_id, pool.pool_id, retry.num_attempts, failure, lapsed_only=False
        )
        if taken_back is not None:
            log.warning("Volume %s: %s; placing it again", spec.volume_id, failure)
            state.next_request = ScheduleRequest(spec=spec, retry=taken_back)

    async def _hand_off(
        self, state: CreateVolumeState, chosen: PoolState, retry: RetryState
    ) -> str | None:
        """Hands the volume to its manager; None once accepted (or refused for good: the row
        tells the rest), else why it could not be handed over."""
        spec = state.request.spec
        deadline = time.monotonic() + self._config.handoff_timeout
        pause = 0.05
        while True:
            try:
                await self._managers.create_volume(chosen.address, spec, chosen.pool_id, retry)
                return None
            except ManagerRefused as refused:
                log.warning("Volume %s: %s", spec.volume_id, refused.message)
                return None
            except BackendUnavailable as unavailable:
                if time.monotonic() >= deadline or self._elsewhere(state, chosen):
                    return unavailable.message
            await asyncio.sleep(pause)
            pause = min(pause * 2, self._config.handoff_backoff_max)

    def _elsewhere(self, state: CreateVolumeState, chosen: PoolState) -> bool:
        """The chosen backend stopped reporting and another pool would take the volume."""
        live = self.states.pools()
        if any(p.pool_id == chosen.pool_id for p in live):
            return False
        assert state.filter_request is not None
        enabled = _enabled(live, self.disabled.known())
        others = [p for p in enabled if p.pool_id != chosen.pool_id]
        filters = filters_for(state.filter_request, self._config.filters)
        return bool(filter_pools(others, state.filter_request, filters))


def _failed(decision: PlacementAttempt, reason: str, result: str) -> PlacementAttempt:
    return dataclasses.replace(decision, chosen=None, result=result, reason=reason)


def _after_claims(
    decision: PlacementAttempt, rejected: Sequence[tuple[str, str]]
) -> PlacementAttempt:
    """The decision once the claims re-read under lock left no candidate: a last
    CapacityFilter pass, as the database saw it."""
    recheck = FilterOutcome(
        name=CAPACITY_FILTER.name,
        hosts_in=len(rejected),
        passed=(),
        rejected=tuple(rejected),
    )
    filters = (*decision.filters, recheck)
    return dataclasses.replace(decision, filters=filters, last_filter=last_filter_of(filters))
