"""A scheduler over two reported backends, with an in-memory volume manager double."""

from __future__ import annotations

from dataclasses import dataclass

from cindermesh.db.engine import Database
from cindermesh.errors import BackendUnavailable
from services.scheduler import claims
from services.scheduler.backend_state import BackendStates
from services.scheduler.manager_client import ManagerRefused
from services.scheduler.scheduling import Scheduler, SchedulerConfig
from services.scheduler.spec import RetryState, ScheduleRequest, VolumeSpec, VolumeTypeSpec
from services.scheduler.weighers import capacity_weigher

from .factories import backend_report, pool_report

A = "node1@file-1#pool1"
B = "node2@file-2#pool1"
#: The capability streams the two backends reported on.
STREAM_A, STREAM_B = object(), object()


@dataclass(frozen=True)
class Sent:
    address: str
    spec: VolumeSpec
    host: str
    retry: RetryState


class FakeManagers:
    """The VolumeManagers double: records accepted hand-offs and every try; addresses in
    ``down`` are unreachable, those in ``refusing`` answer no."""

    def __init__(self) -> None:
        self.sent: list[Sent] = []
        self.tries: list[str] = []
        self.down: set[str] = set()
        self.refusing: set[str] = set()

    async def create_volume(
        self, address: str, spec: VolumeSpec, host: str, retry: RetryState
    ) -> None:
        self.tries.append(address)
        if address in self.down:
            raise BackendUnavailable(f"{address} is down")
        if address in self.refusing:
            raise ManagerRefused(f"{address} refused {spec.volume_id}")
        self.sent.append(Sent(address, spec, host, retry))


def report_a(states: BackendStates) -> None:
    # A has more room than B, so A wins unless something says otherwise.
    states.update(
        backend_report(pool_report(total_capacity_gb=200.0, free_capacity_gb=200.0), address="a"),
        STREAM_A,
    )


def report_b(states: BackendStates) -> None:
    states.update(
        backend_report(
            backend="node2@file-2",
            volume_backend_name="file-2",
            availability_zone="az2",
            address="b",
        ),
        STREAM_B,
    )


def make_scheduler(
    db: Database,
    managers: FakeManagers,
    max_attempts: int = 3,
    multiplier: float = 1.0,
    handoff_timeout: float = 30.0,
    reported: bool = True,
    disabled_refresh: float = 1.0,
) -> Scheduler:
    states = BackendStates()
    if reported:
        report_a(states)
        report_b(states)
    config = SchedulerConfig(
        max_attempts=max_attempts,
        weighers=(capacity_weigher(multiplier),),
        handoff_timeout=handoff_timeout,
        handoff_backoff_max=0.05,
        disabled_refresh=disabled_refresh,
    )
    return Scheduler(states, db, managers, config)


def request(
    volume_id: str,
    size: int = 10,
    az: str = "",
    retry: RetryState | None = None,
    **extra_specs: str,
) -> ScheduleRequest:
    spec = VolumeSpec(
        volume_id=volume_id,
        project_id="p1",
        size_gb=size,
        availability_zone=az,
        volume_type=VolumeTypeSpec(name="__DEFAULT__", extra_specs=extra_specs),
    )
    return ScheduleRequest(spec, retry)


async def free(db: Database, scheduler: Scheduler, pool_id: str) -> float:
    """The pool's free capacity as the scheduler sees it: its report less the claims of the
    volume rows placed on it that the report does not show."""
    state = scheduler.states.pool(pool_id)
    assert state is not None
    return claims.with_claims(state, (await claims.read_claims(db)).get(pool_id)).free_capacity_gb
