"""``cindermesh status``: every service and backend of a deployment, up or down.

Services:

* the api and scheduler replicas, at the addresses the settings give them (``[api]``,
  ``[scheduler]``); an address whose host is a DNS name standing for several replicas (a
  Kubernetes headless Service, a compose network alias) is resolved, and each address it has
  is one replica (fewer than ``replicas`` of them is an error: a Service leaves out the pods
  that are not ready);
* the volume managers, one per backend, as registered in the services table (Cinder's
  ``cinder-volume`` rows), with their heartbeat (``updated_at``), up while it is at most
  Cinder's ``service_down_time`` old, as ``os-services`` says.

Each is asked ``grpc.health.v1.Health/Check`` and is up while it answers ``SERVING`` (and, for
a volume manager, while its heartbeat is recent).

Pools: what a scheduler knows (``Scheduler.GetPools``, the first replica that answers): each
pool of a backend that reports, its last report's time and its total, free and allocated
capacity. A registered backend with no pool in that view is down (it stopped reporting for
``service_down_time``, or its stream ended); a pool whose ``backend_state`` is ``down`` (an RBD
backend whose cluster is unreachable) too.

:func:`gather_status` collects it (the health probe and the scheduler's view are parameters, so
a test can fake them), :func:`format_status` makes the table, :func:`status_json` the
machines' form. ``cindermesh status`` exits 1 when anything is down.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import json
import socket
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from cindermesh.settings import Settings

__all__ = [
    "SERVING",
    "PoolStatus",
    "PoolsView",
    "ServiceStatus",
    "Status",
    "format_status",
    "gather_status",
    "probe_health",
    "resolve_replicas",
    "scheduler_pools",
    "status_json",
]

SERVING = "SERVING"
#: Seconds one health Check or GetPools may take.
PROBE_TIMEOUT = 3.0

HealthProbe = Callable[[str], Awaitable[str]]


@dataclass(frozen=True)
class ServiceStatus:
    """One process of the deployment, as it answers now."""

    #: ``api``, ``scheduler`` or ``volume``.
    kind: str
    #: The replica's name, or the volume service's host (``host@backend``).
    name: str
    #: Where it is reached (``host:port``), as configured or registered.
    address: str
    #: What its health Check answered (``SERVING``, ``NOT_SERVING``, ...) or why none came.
    health: str
    #: A volume manager's last heartbeat (the services row's ``updated_at``, UTC).
    heartbeat: dt.datetime | None = None
    #: Whether that heartbeat is within ``service_down_time`` (None: no heartbeat kept).
    heartbeat_recent: bool | None = None
    #: A volume manager disabled by an operator (``os-services``), with its reason.
    disabled: bool = False

    @property
    def up(self) -> bool:
        return self.health == SERVING and self.heartbeat_recent is not False


@dataclass(frozen=True)
class PoolStatus:
    """One pool (or, with ``pool`` None, a registered backend with no pool reported)."""

    #: ``host@backend``.
    backend: str
    pool: str | None
    up: bool
    #: When a scheduler last received its report (Cinder's ``timestamp`` capability).
    last_report: str | None = None
    #: GiB, or Cinder's ``infinite``/``unknown``.
    total_capacity_gb: float | str | None = None
    free_capacity_gb: float | str | None = None
    allocated_capacity_gb: float | str | None = None
    #: Why it is down, when it is.
    reason: str = ""


@dataclass(frozen=True)
class PoolsView:
    """A scheduler's pools: which replica answered, or why none did."""

    #: ``host@backend#pool`` -> capabilities as reported.
    pools: dict[str, dict[str, Any]] = field(default_factory=dict)
    scheduler: str | None = None
    error: str = ""


@dataclass(frozen=True)
class Status:
    services: tuple[ServiceStatus, ...]
    pools: tuple[PoolStatus, ...]
    #: The scheduler whose view the pools are (None: no scheduler answered).
    pools_from: str | None
    #: What could not be read (the database, every scheduler), if anything.
    errors: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return (
            not self.errors and all(s.up for s in self.services) and all(p.up for p in self.pools)
        )


def _grpc_error(error: grpc.aio.AioRpcError) -> str:
    return f"unreachable: {error.code().name} {error.details() or ''}".strip()


async def probe_health(address: str, timeout: float = PROBE_TIMEOUT) -> str:
    """The answer of ``address``'s ``grpc.health.v1`` Check for the whole server, by name
    (``SERVING``, ``NOT_SERVING``), or ``unreachable: <gRPC code> <details>``."""
    async with grpc.aio.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            reply = await stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=timeout)
        except grpc.aio.AioRpcError as error:
            return _grpc_error(error)
    name: str = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
    return name


def _split(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host.strip("[]"), int(port)


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


async def resolve_replicas(address: str) -> list[str]:
    """``address`` itself when its host is an IP address; else every address its DNS name
    resolves to (one per replica behind it), IPv4 ones only when there are any (as Envoy's
    ``V4_PREFERRED``: a server listening on ``0.0.0.0`` has no IPv6 address), or ``address``
    when it resolves to none."""
    host, port = _split(address)
    if _is_ip(host):
        return [address]
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError:
        return [address]
    by_family: dict[int, dict[str, None]] = {}
    for family, _, _, _, sockaddr in infos:
        ip = str(sockaddr[0])
        entry = f"[{ip}]:{port}" if family == socket.AF_INET6 else f"{ip}:{port}"
        by_family.setdefault(family, {})[entry] = None
    found = by_family.get(socket.AF_INET) or by_family.get(socket.AF_INET6) or {}
    return list(found) or [address]


async def _replicas(kind: str, addresses: Sequence[str]) -> list[tuple[str, str, str]]:
    """(kind, name, address) of every replica: ``kind`` (then ``kind-1``, ...) in order."""
    found: list[str] = []
    for address in addresses:
        found += [a for a in await resolve_replicas(address) if a not in found]
    return [(kind, f"{kind}-{i}" if i else kind, a) for i, a in enumerate(found)]


async def scheduler_pools(addresses: Sequence[str], timeout: float = PROBE_TIMEOUT) -> PoolsView:
    """``Scheduler.GetPools`` of the first of ``addresses`` that answers."""
    from google.protobuf.json_format import MessageToDict

    from cindermesh_pb.scheduler.v1 import scheduler_pb2, scheduler_pb2_grpc

    errors: list[str] = []
    for address in addresses:
        async with grpc.aio.insecure_channel(address) as channel:
            stub = scheduler_pb2_grpc.SchedulerStub(channel)
            try:
                reply = await stub.GetPools(scheduler_pb2.GetPoolsRequest(), timeout=timeout)
            except grpc.aio.AioRpcError as error:
                errors.append(f"{address} {_grpc_error(error)}")
                continue
        pools = {p.name: MessageToDict(p.capabilities) for p in reply.pools}
        return PoolsView(pools=pools, scheduler=address)
    return PoolsView(error="no scheduler answered GetPools: " + "; ".join(errors))


@dataclass(frozen=True)
class _VolumeService:
    host: str
    address: str
    updated_at: dt.datetime
    disabled: bool


async def _volume_services(settings: Settings) -> list[_VolumeService]:
    """The services table's rows, by host."""
    from sqlmodel import select

    from cindermesh.db.engine import open_database
    from cindermesh.db.models import Service

    db = open_database(settings)
    try:
        async with db.read() as session:
            rows = await session.exec(select(Service).order_by(Service.host))
            return [_VolumeService(r.host, r.address, r.updated_at, r.disabled) for r in rows]
    finally:
        await db.close()


def _pool_status(name: str, capabilities: dict[str, Any]) -> PoolStatus:
    backend, _, pool = name.partition("#")
    state = capabilities.get("backend_state") or "up"
    return PoolStatus(
        backend=backend,
        pool=pool,
        up=state != "down",
        last_report=capabilities.get("timestamp"),
        total_capacity_gb=capabilities.get("total_capacity_gb"),
        free_capacity_gb=capabilities.get("free_capacity_gb"),
        allocated_capacity_gb=capabilities.get("allocated_capacity_gb"),
        reason="" if state != "down" else "backend_state: down (its storage is unreachable)",
    )


def _pools(view: PoolsView, backends: Sequence[str]) -> list[PoolStatus]:
    """The view's pools, and a down entry for each registered backend with none in it."""
    pools = [_pool_status(name, caps) for name, caps in sorted(view.pools.items())]
    if view.scheduler is None:
        return pools
    reporting = {p.backend for p in pools}
    silent = [
        PoolStatus(b, None, False, reason="no pool reported to the scheduler")
        for b in backends
        if b not in reporting
    ]
    return sorted([*pools, *silent], key=lambda p: (p.backend, p.pool or ""))


async def gather_status(
    settings: Settings,
    probe: HealthProbe = probe_health,
    pools: Callable[[Sequence[str]], Awaitable[PoolsView]] = scheduler_pools,
    now: Callable[[], dt.datetime] | None = None,
) -> Status:
    """Everything ``cindermesh status`` shows, asked concurrently."""
    from cindermesh.db.models import utcnow
    from services.api.info.operations import is_up

    errors: list[str] = []
    processes: list[tuple[str, str, str]] = []
    for kind, addresses, replicas in (
        ("api", settings.api.addresses, settings.api.replicas),
        ("scheduler", settings.scheduler.addresses, settings.scheduler.replicas),
    ):
        found = await _replicas(kind, addresses)
        if len(found) < replicas:  # behind a DNS name, a replica that is not ready is not there
            errors.append(f"{kind}: {len(found)} of {replicas} replicas at {', '.join(addresses)}")
        processes += found
    try:
        volumes = await _volume_services(settings)
    except Exception as error:  # any driver's error: the database is what could not be read
        volumes = []
        errors.append(f"database {settings.db_url.partition('://')[0]}: {error}")
    healths = await asyncio.gather(
        *(probe(address) for _, _, address in processes),
        *(probe(v.address) for v in volumes),
    )
    view = await pools([address for kind, _, address in processes if kind == "scheduler"])
    if view.error:
        errors.append(view.error)
    moment = (now or utcnow)()
    services = [
        ServiceStatus(kind, name, address, health)
        for (kind, name, address), health in zip(processes, healths[: len(processes)], strict=True)
    ]
    services += [
        ServiceStatus(
            "volume",
            v.host,
            v.address,
            health,
            heartbeat=v.updated_at,
            heartbeat_recent=is_up(v.updated_at, moment),
            disabled=v.disabled,
        )
        for v, health in zip(volumes, healths[len(processes) :], strict=True)
    ]
    return Status(
        services=tuple(services),
        pools=tuple(_pools(view, [v.host for v in volumes])),
        pools_from=view.scheduler,
        errors=tuple(errors),
    )


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> list[str]:
    cells = [list(header), *([_cell(v) for v in row] for row in rows)]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    return [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells
    ]


def format_status(status: Status) -> str:
    """The table ``cindermesh status`` prints."""
    services = _table(
        ("SERVICE", "NAME", "ADDRESS", "STATE", "HEALTH", "HEARTBEAT"),
        [
            (
                s.kind,
                s.name,
                s.address,
                ("up" if s.up else "down") + (" (disabled)" if s.disabled else ""),
                s.health,
                s.heartbeat,
            )
            for s in status.services
        ],
    )
    pools = _table(
        ("POOL", "STATE", "LAST REPORT", "TOTAL GB", "FREE GB", "ALLOCATED GB"),
        [
            (
                f"{p.backend}#{p.pool}" if p.pool else p.backend,
                "up" if p.up else f"down: {p.reason}",
                p.last_report,
                p.total_capacity_gb,
                p.free_capacity_gb,
                p.allocated_capacity_gb,
            )
            for p in status.pools
        ],
    )
    source = f"pools as scheduler {status.pools_from} sees them" if status.pools_from else ""
    lines = [*services, "", *pools]
    if source:
        lines.append(source)
    lines += [f"error: {e}" for e in status.errors]
    down = sum(not s.up for s in status.services) + sum(not p.up for p in status.pools)
    lines.append(
        "all up" if status.ok else f"DOWN: {down} of the above, {len(status.errors)} errors"
    )
    return "\n".join(lines)


def status_json(status: Status) -> str:
    """The same as one JSON document (``up`` on every service, ``ok`` for the whole)."""

    def service(s: ServiceStatus) -> dict[str, Any]:
        entry = asdict(s)
        entry["heartbeat"] = s.heartbeat.isoformat() if s.heartbeat else None
        entry["up"] = s.up
        return entry

    document = {
        "ok": status.ok,
        "services": [service(s) for s in status.services],
        "pools": [asdict(p) for p in status.pools],
        "pools_from": status.pools_from,
        "errors": list(status.errors),
    }
    return json.dumps(document, indent=2)
