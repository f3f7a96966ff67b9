"""A host's connection to a volume of this backend (Cinder's ``VolumeManager``
``initialize_connection``, ``_connection_create``, ``_parse_connection_options`` and
``terminate_connection``).

``initialize`` is a checklist: read the volume's rows (it must be placed on this backend) ->
check the connector -> the driver's connection info -> what the manager adds to its ``data``:

    qos_specs          the type's QoS specs consumed by ``front-end`` or ``both``, the
                       ``*_per_gb`` keys turned into totals for the volume's size; else None
    access_mode        admin metadata ``attached_mode``; else ``ro`` if ``readonly`` is
                       ``True``; else ``rw``
    encrypted          (if the driver did not say) whether the type has an encryption
    cacheable          type extra spec ``cacheable`` is ``<is> True`` (and the driver's value,
                       if it gave one, is true)
    discard            the driver's value, kept
    enforce_multipath  the connector's (False if it has none)

Both operations read rows only (a read-only session) and change none; nothing here undoes
anything. The drivers keep their blocking calls off the event loop. Each operation is a span.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

from opentelemetry import trace
from opentelemetry.util.types import AttributeValue
from sqlmodel.ext.asyncio.session import AsyncSession

from cindermesh.db import volume_actions
from cindermesh.db.engine import Database
from cindermesh.db.models import (
    Volume,
    VolumeType,
)
from cindermesh.db.volume_types import encryption_of, qos_of, type_extra_specs
from cindermesh.telemetry.tracing import tracer
from services.volume.domain import backend_of
from services.volume.drivers.base import BlockStorageDriver
from services.volume.errors import (
    ConnectionFailed,
    InvalidConnector,
    VolumeNotFound,
    WrongBackend,
)

__all__ = [
    "Connections",
    "Connector",
    "VolumeOptions",
    "access_mode",
    "cacheable",
    "front_end_qos_specs",
    "parse_connection_options",
    "parse_connector",
]

log = logging.getLogger(__name__)

#: Cinder's per-GB tunable QoS keys (``<key>_per_gb``, ``<key>_per_gb_min``, ``<key>_max``).
TUNE_OPTIONS = (
    "read_iops_sec",
    "read_bytes_sec",
    "write_iops_sec",
    "write_bytes_sec",
    "total_iops_sec",
    "total_bytes_sec",
)
#: QoS consumers whose specs go to the host.
FRONT_END_CONSUMERS = ("front-end", "both")
#: The connector keys os-brick gives as strings (or null), and those it gives as booleans.
_STRING_KEYS = ("host", "ip", "initiator", "mountpoint", "mode", "platform", "os_type")
_BOOLEAN_KEYS = ("multipath", "enforce_multipath", "do_local_attach")


@dataclass(frozen=True)
class Connector:
    """A host's connector (os-brick's ``get_connector_properties``), as checked."""

    #: The whole connector, as the host gave it.
    properties: Mapping[str, object]

    @property
    def host(self) -> str | None:
        host = self.properties.get("host")
        return host if isinstance(host, str) else None

    @property
    def enforce_multipath(self) -> bool:
        return self.properties.get("enforce_multipath") is True


def parse_connector(properties: Mapping[str, object]) -> Connector:
    """The connector, checked as Cinder's drivers' ``validate_connector`` would for ``rbd``
    and ``file`` (they need no key): the keys os-brick types are of their type. Raises
    InvalidConnector."""
    for key in _STRING_KEYS:
        if properties.get(key) is not None and not isinstance(properties[key], str):
            raise InvalidConnector(f"Connector {key} must be a string.")
    for key in _BOOLEAN_KEYS:
        if key in properties and not isinstance(properties[key], bool):
            raise InvalidConnector(f"Connector {key} must be a boolean.")
    return Connector(properties=dict(properties))


@dataclass(frozen=True)
class VolumeOptions:
    """What the rows say for ``parse_connection_options`` (Cinder reads them from the volume
    and its type)."""

    size_gb: int
    admin_metadata: Mapping[str, str]
    #: The type's QoS specs' consumer (None: the type has none) and keys.
    qos_consumer: str | None
    qos_specs: Mapping[str, str | None]
    extra_specs: Mapping[str, str]
    #: The type has an encryption.
    encrypted: bool


def _integer(specs: Mapping[str, object], key: str) -> int:
    """Cinder's ``int(specs[key])``; ConnectionFailed for a value that is not an integer."""
    value = specs[key]
    try:
        if isinstance(value, int | str):
            return int(value)
    except ValueError:
        pass
    raise ConnectionFailed(f"Invalid QoS specs: {key} {value!r} is not an integer.")


def _per_gb(specs: dict[str, object], size_gb: int) -> dict[str, object]:
    """Cinder's per-GB QoS: ``<key> = min(max(<key>_per_gb_min, <key>_per_gb * size),
    <key>_max)``, the per-GB keys removed; ``_min`` and ``_max`` are only read (and removed)
    with a ``_per_gb``."""
    for option in TUNE_OPTIONS:
        per_gb, per_gb_min, maximum = f"{option}_per_gb", f"{option}_per_gb_min", f"{option}_max"
        if per_gb not in specs:
            continue
        minimum_value = _integer(specs, per_gb_min) if per_gb_min in specs else 0
        per_gb_value = max(minimum_value, _integer(specs, per_gb) * size_gb)
        max_value = _integer(specs, maximum) if maximum in specs else per_gb_value
        specs.pop(per_gb_min, None)
        specs.pop(maximum, None)
        specs[option] = min(per_gb_value, max_value)
        specs.pop(per_gb)
    return specs


def front_end_qos_specs(
    consumer: str | None, specs: Mapping[str, str | None], size_gb: int
) -> dict[str, object] | None:
    """The QoS specs the host applies: those consumed by ``front-end`` or ``both``, per-GB
    keys computed for ``size_gb``; None for none (or ``back-end`` ones)."""
    if consumer not in FRONT_END_CONSUMERS:
        return None
    return _per_gb(dict(specs), size_gb)


def access_mode(admin_metadata: Mapping[str, str]) -> str:
    """``attached_mode`` (set by ``os-attach``), else ``ro`` for a read-only volume."""
    mode = admin_metadata.get("attached_mode")
    if mode is not None:
        return mode
    return "ro" if admin_metadata.get("readonly") == "True" else "rw"


def cacheable(extra_specs: Mapping[str, str], driver_value: object) -> bool:
    """The type's ``cacheable`` (``<is> True``); a driver's False is kept, its True is not
    enough."""
    wanted = extra_specs.get("cacheable") == "<is> True"
    if driver_value is not None:
        return bool(driver_value) and wanted
    return wanted


def parse_connection_options(
    data: Mapping[str, object], options: VolumeOptions, connector: Connector
) -> dict[str, object]:
    """The driver's connection ``data`` with what the manager adds (see the module)."""
    added = dict(data)
    added["qos_specs"] = front_end_qos_specs(
        options.qos_consumer, options.qos_specs, options.size_gb
    )
    added["access_mode"] = access_mode(options.admin_metadata)
    if added.get("encrypted") is None:
        added["encrypted"] = options.encrypted
    added["cacheable"] = cacheable(options.extra_specs, added.get("cacheable"))
    added["enforce_multipath"] = connector.enforce_multipath
    return added


async def _volume_options(session: AsyncSession, volume: Volume) -> VolumeOptions:
    type_id = volume.volume_type_id
    metadata = await volume_actions.admin_metadata(session, [volume.id])
    consumer, qos_specs = await qos_of(session, await session.get(VolumeType, type_id))
    return VolumeOptions(
        size_gb=volume.size,
        admin_metadata=metadata[volume.id],
        qos_consumer=consumer,
        qos_specs=qos_specs,
        extra_specs=await type_extra_specs(session, type_id),
        encrypted=type_id in await encryption_of(session, (type_id,)),
    )


class Connections:
    """The connection operations of the manager of ``backend_host`` (host@backend)."""

    def __init__(self, db: Database, driver: BlockStorageDriver, backend_host: str) -> None:
        self._db = db
        self._driver = driver
        self.backend_host = backend_host

    async def _placed_here(self, session: AsyncSession, volume_id: str) -> Volume:
        """The volume, placed on this backend; raises VolumeNotFound or WrongBackend."""
        volume = await session.get(Volume, volume_id)
        if volume is None:
            raise VolumeNotFound(volume_id)
        if volume.host is None or backend_of(volume.host) != self.backend_host:
            raise WrongBackend(f"Volume {volume_id} is not on {self.backend_host}.")
        return volume

    async def _options(self, volume_id: str) -> VolumeOptions:
        async with self._db.read() as session:
            return await _volume_options(session, await self._placed_here(session, volume_id))

    async def _check_placed_here(self, volume_id: str) -> None:
        async with self._db.read() as session:
            await self._placed_here(session, volume_id)

    async def initialize(
        self, volume_id: str, properties: Mapping[str, object]
    ) -> dict[str, object]:
        """Cinder's connection info, ``{"driver_volume_type": ..., "data": {...}}``, for the
        host of ``properties`` (its connector). Raises VolumeNotFound, WrongBackend,
        InvalidConnector, or ConnectionFailed (the driver failed)."""
        connector = parse_connector(properties)
        attributes: dict[str, AttributeValue] = {
            "volume.id": volume_id,
            "connector.host": connector.host or "",
        }
        with tracer().start_as_current_span("volume.initialize_connection", attributes=attributes):
            options = await self._options(volume_id)
            try:
                info = await self._driver.initialize_connection(volume_id, connector.properties)
            except Exception as error:
                log.error("Volume %s: driver initialize connection failed: %r", volume_id, error)
                raise ConnectionFailed(
                    f"Driver initialize connection failed (error: {error})."
                ) from error
            span = trace.get_current_span()
            span.set_attribute("connection.driver_volume_type", info.driver_volume_type)
            answer = info.as_dict()
            data = answer["data"]
            assert isinstance(data, dict)
            answer["data"] = parse_connection_options(data, options, connector)
        log.info("Volume %s: initialize volume connection completed successfully.", volume_id)
        return answer

    async def terminate(
        self, volume_id: str, properties: Mapping[str, object] | None, force: bool
    ) -> None:
        """The host of ``properties`` (its connector) no longer uses the volume. Without a
        connector (a connection never made) the driver is not called unless ``force``.
        Raises VolumeNotFound, WrongBackend, InvalidConnector, or ConnectionFailed."""
        connector = parse_connector(properties) if properties is not None else None
        host = connector.host if connector is not None else None
        attributes: dict[str, AttributeValue] = {
            "volume.id": volume_id,
            "connector.host": host or "",
            "connection.force": force,
        }
        with tracer().start_as_current_span("volume.terminate_connection", attributes=attributes):
            await self._check_placed_here(volume_id)
            if connector is None and not force:
                log.info("Volume %s: no connector; the backend is not called.", volume_id)
                return
            given = connector.properties if connector is not None else None
            try:
                await self._driver.terminate_connection(volume_id, given)
            except Exception as error:
                log.error("Volume %s: terminate volume connection failed: %r", volume_id, error)
                raise ConnectionFailed(f"Terminate volume connection failed: {error}") from error
        log.info("Volume %s: terminate volume connection completed successfully.", volume_id)
