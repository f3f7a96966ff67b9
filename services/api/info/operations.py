"""Availability zones, services and pools: what the deployment looks like right now.

* Zones: those of the registered backends (the services table) and of the configured ones; a
  zone is available while one of its backends has a recent heartbeat.
* Services: the scheduler (up while it answers the api) and every registered volume backend,
  up or down from the age of its heartbeat (Cinder's ``service_down_time``, 60 s). Shown with
  Cinder's binary names, ``cinder-scheduler`` and ``cinder-volume``.
* Pools: the scheduler's live backend states.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from sqlmodel import select

from cindermesh.db.engine import Database
from cindermesh.db.models import Service, utcnow
from cindermesh.errors import BackendUnavailable
from cindermesh.settings import Settings
from cindermesh_pb.api.v1 import info_service_pb2 as info_pb2
from cindermesh_pb.scheduler.v1 import scheduler_pb2
from services.api.clients import SchedulerClient
from services.api.edge.request_context import RequestContext
from services.api.policy import authorize
from services.api.schema import parse_bool_param
from services.api.view_values import NULL, format_time, text_or_null

__all__ = [
    "SCHEDULER_BINARY",
    "SERVICE_DOWN_TIME",
    "VOLUME_BINARY",
    "InfoOperations",
    "ServiceEntry",
    "host_matches",
    "is_up",
    "service_view",
    "zone_states",
]

#: Seconds after the last heartbeat when a service counts as down (Cinder's default).
SERVICE_DOWN_TIME = 60.0
SCHEDULER_BINARY = "cinder-scheduler"
VOLUME_BINARY = "cinder-volume"


@dataclass(frozen=True)
class ServiceEntry:
    binary: str
    host: str
    zone: str
    up: bool
    updated_at: dt.datetime | None
    #: 3.49's ``backend_state`` of a volume service: as the scheduler sees it, None if unknown.
    backend_state: str | None = None
    disabled: bool = False
    disabled_reason: str | None = None
    frozen: bool = False


def is_up(updated_at: dt.datetime, now: dt.datetime) -> bool:
    return abs((now - updated_at).total_seconds()) <= SERVICE_DOWN_TIME


def host_matches(host: str, wanted: str) -> bool:
    """Cinder's host filter: the host itself, or its backends and pools."""
    return host == wanted or host.startswith((f"{wanted}@", f"{wanted}#"))


def zone_states(
    services: Iterable[Service], configured: Iterable[str], now: dt.datetime
) -> list[tuple[str, bool]]:
    """(zone, available), sorted by name."""
    available = {zone: False for zone in configured}
    for service in services:
        zone = service.availability_zone
        available[zone] = available.get(zone, False) or is_up(service.updated_at, now)
    return sorted(available.items())


def service_view(ctx: RequestContext, entry: ServiceEntry) -> info_pb2.ServiceStatus:
    view = info_pb2.ServiceStatus(
        binary=entry.binary,
        host=entry.host,
        zone=entry.zone,
        status="disabled" if entry.disabled else "enabled",
        state="up" if entry.up else "down",
        updated_at=text_or_null(format_time(entry.updated_at) if entry.updated_at else None),
        disabled_reason=text_or_null(entry.disabled_reason),
    )
    if entry.binary == VOLUME_BINARY:
        view.replication_status.CopyFrom(text_or_null("disabled"))
        view.active_backend_id.CopyFrom(NULL)
        view.frozen = entry.frozen
        if ctx.version.at_least(49):
            view.backend_state.CopyFrom(text_or_null(entry.backend_state))
    if ctx.version.at_least(7):
        view.cluster.CopyFrom(NULL)
    return view


def _backend_states(pools: Sequence[scheduler_pb2.PoolInfo]) -> dict[str, str]:
    """host@backend -> Cinder's ``backend_state`` capability (``up`` unless reported)."""
    states: dict[str, str] = {}
    for pool in pools:
        reported = pool.capabilities.fields.get("backend_state")
        state = reported.string_value if reported is not None and reported.string_value else "up"
        states[pool.name.partition("#")[0]] = state
    return states


class InfoOperations:
    def __init__(
        self,
        db: Database,
        settings: Settings,
        scheduler: SchedulerClient,
        clock: Callable[[], dt.datetime] = utcnow,
    ) -> None:
        self._db = db
        self._settings = settings
        self._scheduler = scheduler
        self._clock = clock

    async def volume_services(self) -> list[Service]:
        """The registered volume services (the services table), by host."""
        return await self._services()

    async def _services(self) -> list[Service]:
        async with self._db.read() as session:
            return list(await session.exec(select(Service).order_by(Service.host)))

    async def availability_zones(self) -> list[tuple[str, bool]]:
        configured = [backend.availability_zone for backend in self._settings.backends]
        return zone_states(await self._services(), configured, self._clock())

    async def services(
        self, ctx: RequestContext, host: str | None, binary: str | None
    ) -> list[ServiceEntry]:
        authorize(ctx, "volume_extension:services:index")
        now = self._clock()
        try:
            pools: list[scheduler_pb2.PoolInfo] | None = await self._scheduler.get_pools()
        except BackendUnavailable:
            pools = None
        backend_states = _backend_states(pools or [])
        entries = [
            ServiceEntry(
                binary=SCHEDULER_BINARY,
                host=self._settings.host_name,
                zone=self._settings.api.default_availability_zone,
                up=pools is not None,
                updated_at=now if pools is not None else None,
            )
        ]
        entries += [
            ServiceEntry(
                binary=VOLUME_BINARY,
                host=service.host,
                zone=service.availability_zone,
                up=is_up(service.updated_at, now),
                updated_at=service.updated_at,
                backend_state=backend_states.get(service.host),
                disabled=service.disabled,
                disabled_reason=service.disabled_reason,
                frozen=service.frozen,
            )
            for service in await self._services()
        ]
        return [
            e
            for e in entries
            if (host is None or host_matches(e.host, host))
            and (binary is None or e.binary == binary)
        ]

    async def pools(
        self, ctx: RequestContext, detail: str, name: str | None
    ) -> list[scheduler_pb2.PoolInfo]:
        """The scheduler's pools; their capabilities only when ``detail`` is true."""
        authorize(ctx, "scheduler_extension:scheduler_stats:get_pools")
        with_capabilities = parse_bool_param("detail", detail)
        pools = await self._scheduler.get_pools()
        if name is not None and ctx.version.at_least(28):
            pools = [p for p in pools if p.name == name]
        if not with_capabilities:
            pools = [scheduler_pb2.PoolInfo(name=p.name) for p in pools]
        return pools
