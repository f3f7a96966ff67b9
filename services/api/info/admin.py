"""The admin actions on the deployment: Cinder's ``os-services`` actions, ``os-hosts`` and
``capabilities``.

* enable / disable / disable-log-reason: the volume service's ``disabled`` flag (and reason)
  in the services table. The scheduler is not a row of that table (it is up while it answers):
  naming it answers Cinder's not-found.
* freeze / thaw: the backend's volume services frozen (and disabled, reason ``frozen``), as
  Cinder's volume manager does; thaw enables them again.
* failover_host: refused as Cinder refuses it for a backend without replication.
* Hosts: every enabled service (the scheduler and the volume backends); a volume host's
  usage from the volumes table (no snapshots yet: zero).
* Capabilities: a backend's, from the pools the scheduler has from its volume manager.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from google.protobuf import struct_pb2
from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from cindermesh.db.engine import Database
from cindermesh.db.models import Service, Volume, utcnow
from cindermesh.errors import BackendUnavailable, InvalidInput, NotFound
from cindermesh.settings import Settings
from cindermesh_pb.api.v1 import info_service_pb2 as info_pb2
from services.api.clients import UNAVAILABLE_MESSAGE, SchedulerClient
from services.api.edge.request_context import RequestContext
from services.api.info.operations import SCHEDULER_BINARY, VOLUME_BINARY, host_matches, is_up
from services.api.schema import (
    JsonValue,
    check_no_additional,
    check_string,
    check_type,
    invalid_field,
    invalid_input,
    not_valid_under_any,
    object_to_python,
)
from services.api.view_values import NULL, format_time, text_or_null

__all__ = ["AdminOperations", "host_level_matches", "service_update_view"]

#: Cinder's ``parameter_types.cinder_host`` pattern.
CINDER_HOST_PATTERN = r"^[a-zA-Z0-9-._#@:/+\[\]]*$"
#: Microversion of ``cluster`` in freeze, thaw and failover (Cinder's REPLICATION_CLUSTER).
REPLICATION_CLUSTER = 26
FROZEN_REASON = "frozen"
#: Cinder's standard capabilities (``_init_standard_capabilities``).
STANDARD_PROPERTIES = (
    ("thin_provisioning", "Thin Provisioning", "Sets thin provisioning."),
    ("compression", "Compression", "Enables compression."),
    ("qos", "QoS", "Enables QoS."),
    ("replication_enabled", "Replication", "Enables replication."),
)


def host_level_matches(host: str, wanted: str) -> bool:
    """Cinder's ``_filter_host``: a pool (``#``) exactly, a backend (``@``) and its pools, a
    host and its backends and pools."""
    if "#" in wanted:
        return host == wanted
    if "@" in wanted:
        return host == wanted or host.startswith(f"{wanted}#")
    return host_matches(host, wanted)


@dataclass(frozen=True)
class ServiceUpdate:
    host: str
    service: str
    binary: str
    disabled: bool
    #: disable-log-reason only: the reason as sent (``None`` otherwise).
    reason: str | None = None
    with_reason: bool = False


def service_update_view(update: ServiceUpdate) -> info_pb2.ServiceUpdateResponse:
    view = info_pb2.ServiceUpdateResponse(
        host=update.host,
        service=update.service,
        binary=update.binary,
        status="disabled" if update.disabled else "enabled",
        disabled=update.disabled,
    )
    if update.with_reason and update.reason is not None:
        view.disabled_reason = update.reason
    return view


def _check_host(value: JsonValue) -> None:
    check_type("host", value, ("string", "null"))
    if isinstance(value, str):
        check_string("host", value, min_length=1, pattern=CINDER_HOST_PATTERN)


def _check_nullable(name: str, value: JsonValue) -> None:
    check_string(name, value, nullable=True)


def _enable_body(body: dict[str, JsonValue], with_reason: bool) -> tuple[str, str, str]:
    """Cinder's ``enable_and_disable`` (or ``disable_log_reason``) schema, then its
    ``get_cluster_host``: (host, service, binary)."""
    for key in ("binary", "service"):
        if key in body:
            check_string(key, body[key], min_length=1)
    if "host" in body:
        _check_host(body["host"])
    if "cluster" in body:
        _check_nullable("cluster", body["cluster"])
    if with_reason and "disabled_reason" in body:
        reason = body["disabled_reason"]
        check_string("disabled_reason", reason, min_length=1)
        assert isinstance(reason, str)
        if not reason.strip():
            raise invalid_field("disabled_reason", reason, f"{reason!r} is not a 'disabled_reason'")
    if "binary" not in body and "service" not in body:
        raise InvalidInput(not_valid_under_any(body))
    allowed = {"binary", "host", "cluster", "service"} | (
        {"disabled_reason"} if with_reason else set()
    )
    check_no_additional(None, body, allowed)
    host = body.get("host")
    if not host:
        raise invalid_input("Host field is missing.")
    assert isinstance(host, str)
    service, binary = body.get("service", ""), body.get("binary", "")
    assert isinstance(service, str) and isinstance(binary, str)
    return host, service, binary


def _replication_body(
    ctx: RequestContext, body: dict[str, JsonValue], failover: bool
) -> tuple[str | None, str | None]:
    """Cinder's ``freeze_and_thaw`` / ``failover_host`` schema and ``get_cluster_host``:
    (host, cluster)."""
    if "cluster" in body:
        _check_nullable("cluster", body["cluster"])
    if "host" in body:
        _check_host(body["host"])
    if failover and "backend_id" in body:
        _check_nullable("backend_id", body["backend_id"])
    allowed = {"cluster", "host"} | ({"backend_id"} if failover else set())
    check_no_additional(None, body, allowed)
    host = body.get("host")
    assert host is None or isinstance(host, str)
    if ctx.version.at_least(REPLICATION_CLUSTER):
        cluster = body.get("cluster")
        assert cluster is None or isinstance(cluster, str)
        if bool(cluster) == bool(host):
            raise invalid_input("One and only one of cluster and host must be set.")
        return host, cluster
    if not host:
        raise invalid_input("Host field is missing.")
    return host, None


class AdminOperations:
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

    # --- os-services actions ---------------------------------------------------------------

    async def set_enabled(
        self, body: struct_pb2.Struct, *, disabled: bool, with_reason: bool = False
    ) -> ServiceUpdate:
        """enable, disable, disable-log-reason."""
        host, service, binary = _enable_body(object_to_python(body), with_reason)
        binary_key = binary or service
        reason = object_to_python(body).get("disabled_reason") if with_reason else None
        assert reason is None or isinstance(reason, str)
        async with self._db.session() as session:
            rows = [
                row
                for row in await session.exec(
                    select(Service).order_by(col(Service.host)).with_for_update()
                )
                if binary_key == VOLUME_BINARY and host_level_matches(row.host, host)
            ]
            if not rows:
                raise NotFound(f"Service {binary_key} could not be found on host {host}.")
            row = rows[0]
            row.disabled = disabled
            if reason:
                row.disabled_reason = reason
            session.add(row)
        return ServiceUpdate(host, service, binary, disabled, reason, with_reason)

    async def freeze(self, ctx: RequestContext, body: struct_pb2.Struct, frozen: bool) -> None:
        """freeze (``frozen`` True) and thaw."""
        host, cluster = _replication_body(ctx, object_to_python(body), failover=False)
        async with self._db.session() as session:
            rows = await self._replication_services(session, host, cluster)
            changed = [row for row in rows if row.frozen != frozen]
            if not changed:
                hosts = [row.host for row in rows]
                raise invalid_input(
                    f"No service could be changed: frozen in {hosts!r} must be "
                    f"{not frozen} to failover."
                )
            for row in changed:
                row.frozen = frozen
                # As Cinder's volume manager: frozen is disabled; thawed is enabled again.
                row.disabled = frozen
                row.disabled_reason = FROZEN_REASON if frozen else ""
                session.add(row)

    async def failover(self, ctx: RequestContext, body: struct_pb2.Struct) -> None:
        """No backend has replication: Cinder's refusal (after the service's look-up)."""
        host, cluster = _replication_body(ctx, object_to_python(body), failover=True)
        async with self._db.read() as session:
            rows = await self._replication_services(session, host, cluster)
        hosts = [row.host for row in rows]
        raise invalid_input(
            f"No service could be changed: replication_status in {hosts!r} must be "
            "['enabled', 'failed-over'] and must be up to failover."
        )

    async def _replication_services(
        self, session: AsyncSession, host: str | None, cluster: str | None
    ) -> list[Service]:
        rows = list(await session.exec(select(Service).order_by(col(Service.host))))
        # No clusters here: a cluster name finds no service.
        found = [r for r in rows if host is not None and host_level_matches(r.host, host)]
        if not found:
            if host:
                raise InvalidInput(f"No service found with host={host}")
            raise InvalidInput(f"No service found with cluster={cluster}")
        return found

    # --- os-hosts ----------------------------------------------------------------------------

    async def hosts(self, zone: str | None) -> list[info_pb2.HostSummary]:
        """Cinder's ``_list_hosts``: the enabled services, the scheduler first."""
        now = self._clock()
        try:
            await self._scheduler.get_pools()
            scheduler_up = True
        except BackendUnavailable:
            scheduler_up = False
        entries = [
            info_pb2.HostSummary(
                host_name=self._settings.host_name,
                service=SCHEDULER_BINARY,
                zone=self._settings.api.default_availability_zone,
                service_status="available" if scheduler_up else "unavailable",
                service_state="enabled",
                last_update=text_or_null(format_time(now)) if scheduler_up else NULL,
            )
        ]
        async with self._db.read() as session:
            rows = list(await session.exec(select(Service).order_by(col(Service.host))))
        entries += [
            info_pb2.HostSummary(
                host_name=row.host,
                service=VOLUME_BINARY,
                zone=row.availability_zone,
                service_status="available" if is_up(row.updated_at, now) else "unavailable",
                service_state="enabled",
                last_update=text_or_null(format_time(row.updated_at)),
            )
            for row in rows
            if not row.disabled
        ]
        return [e for e in entries if not zone or e.zone == zone]

    async def host_usage(self, host: str) -> list[info_pb2.HostResource]:
        """A volume host's volumes, in total and per project (Cinder's ``show``)."""
        async with self._db.read() as session:
            services = [
                row
                for row in await session.exec(select(Service).order_by(col(Service.host)))
                if not row.disabled and host_level_matches(row.host, host)
            ]
            if not services:
                raise NotFound(f"Service {VOLUME_BINARY} could not be found on host {host}.")
            backend = services[0].host
            placed = col(Volume.host)
            on_host = (placed == backend) | placed.startswith(f"{backend}#")
            query = (
                select(Volume.project_id, func.count(), func.coalesce(func.sum(Volume.size), 0))
                .where(on_host)
                .group_by(col(Volume.project_id))
                .order_by(col(Volume.project_id))
            )
            per_project = [(str(p), int(n), int(gb)) for p, n, gb in await session.exec(query)]

        def resource(project: str, count: int, size: int) -> info_pb2.HostResource:
            return info_pb2.HostResource(
                host=host,
                project=project,
                volume_count=str(count),
                total_volume_gb=str(size),
                snapshot_count="0",
                total_snapshot_gb="0",
            )

        total = resource(
            "(total)", sum(n for _, n, _ in per_project), sum(gb for _, _, gb in per_project)
        )
        return [total, *(resource(p, n, gb) for p, n, gb in per_project)]

    # --- capabilities ------------------------------------------------------------------------

    async def capabilities(self, host: str) -> info_pb2.Capabilities:
        async with self._db.read() as session:
            services = [
                row
                for row in await session.exec(select(Service).order_by(col(Service.host)))
                if host_level_matches(row.host, host)
            ]
        if not services:
            raise NotFound(f"Can't find service: {host}")
        backend = services[0].host
        pools = [
            p for p in await self._scheduler.get_pools() if p.name.partition("#")[0] == backend
        ]
        if not pools:
            # Cinder's would time out asking the backend; ours has not reported.
            raise BackendUnavailable(UNAVAILABLE_MESSAGE)
        reported = pools[0].capabilities.fields

        def text(key: str) -> str:
            value = reported.get(key)
            return value.string_value if value is not None else ""

        def nullable(key: str) -> struct_pb2.Value:
            value = reported.get(key)
            return value if value is not None and value.HasField("string_value") else NULL

        view = info_pb2.Capabilities(
            namespace=f"OS::Storage::Capabilities::{backend}",
            vendor_name=text("vendor_name"),
            volume_backend_name=text("volume_backend_name"),
            pool_name=NULL,
            driver_version=text("driver_version"),
            storage_protocol=text("storage_protocol"),
            display_name=nullable("display_name"),
            description=nullable("description"),
            visibility=nullable("visibility"),
        )
        properties = reported.get("properties")
        if properties is not None and properties.HasField("struct_value"):
            view.properties.CopyFrom(properties.struct_value)
        else:
            for key, title, description in STANDARD_PROPERTIES:
                view.properties.fields[key].struct_value.update(
                    {"title": title, "description": description, "type": "boolean"}
                )
        return view
