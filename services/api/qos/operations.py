"""QoS specs: Cinder's ``qos_specs_manage`` controller and ``cinder/volume/qos_specs.py``, as
plain data over the ``qos_specs`` / ``qos_specs_items`` tables and ``volume_types.qos_specs_id``.

The order of the checks is Cinder's: the body's schema, then the policy (the servicer's edge
checks it first where Cinder has no body), then the look-ups (``No such QoS spec <id>.``,
``Volume type <id> could not be found.``), then the state (in use, already associated).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, delete, select
from sqlmodel.ext.asyncio.session import AsyncSession

from cindermesh.db.engine import Database
from cindermesh.db.models import QosSpecs, QosSpecsItem, VolumeType, utcnow
from cindermesh.errors import Conflict, InvalidInput, NotFound
from services.api.edge.request_context import RequestContext
from services.api.policy import authorize
from services.api.qos.body import check_consumer, qos_create_input
from services.api.schema import JsonValue, strict_bool

__all__ = ["QosAssociation", "QosOperations", "QosRecord"]

RULE = "volume_extension:qos_specs_manage:{}"


@dataclass(frozen=True)
class QosRecord:
    """QoS specs with their keys."""

    id: str
    name: str
    consumer: str
    specs: dict[str, str | None]


@dataclass(frozen=True)
class QosAssociation:
    """A volume type that has the specs."""

    id: str
    name: str


def _not_found(qos_id: str) -> NotFound:
    return NotFound(f"No such QoS spec {qos_id}.")


def _type_id_required(vol_type_id: str | None) -> str:
    if not vol_type_id:
        raise InvalidInput("Volume Type id must not be None.")
    return vol_type_id


async def _get_row(session: AsyncSession, qos_id: str) -> QosSpecs:
    row = await session.get(QosSpecs, qos_id)
    if row is None:
        raise _not_found(qos_id)
    return row


async def _items(session: AsyncSession, qos_id: str) -> dict[str, QosSpecsItem]:
    rows = await session.exec(select(QosSpecsItem).where(QosSpecsItem.specs_id == qos_id))
    return {row.key: row for row in rows}


async def _record(session: AsyncSession, row: QosSpecs) -> QosRecord:
    items = await _items(session, row.id)
    specs = {key: items[key].value for key in sorted(items)}
    return QosRecord(id=row.id, name=row.name, consumer=row.consumer, specs=specs)


async def _get_type(session: AsyncSession, type_id: str) -> VolumeType:
    volume_type = await session.get(VolumeType, type_id)
    if volume_type is None:
        raise NotFound(f"Volume type {type_id} could not be found.")
    return volume_type


class QosOperations:
    """The operations behind QosService; the servicer only converts to and from protos."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def list_all(self) -> list[QosRecord]:
        """Every specs, newest first (Cinder's default sort: created_at, id, descending)."""
        async with self._db.read() as session:
            query = select(QosSpecs).order_by(
                col(QosSpecs.created_at).desc(), col(QosSpecs.id).desc()
            )
            rows = list(await session.exec(query))
            items = await session.exec(
                select(QosSpecsItem).where(col(QosSpecsItem.specs_id).in_([r.id for r in rows]))
            )
        by_specs: dict[str, dict[str, str | None]] = {row.id: {} for row in rows}
        for item in sorted(items, key=lambda i: i.key):
            by_specs[item.specs_id][item.key] = item.value
        return [QosRecord(r.id, r.name, r.consumer, by_specs[r.id]) for r in rows]

    async def get(self, qos_id: str) -> QosRecord:
        async with self._db.read() as session:
            return await _record(session, await _get_row(session, qos_id))

    async def create(self, ctx: RequestContext, qos_specs: dict[str, JsonValue]) -> QosRecord:
        """Admins (checked after the body's schema); 409 ``QoS Specs <name> already exists.``"""
        authorize(ctx, RULE.format("create"))
        given = qos_create_input(qos_specs)
        exists = Conflict(f"QoS Specs {given.name} already exists.")
        try:
            async with self._db.session() as session:
                found = await session.exec(select(QosSpecs.id).where(QosSpecs.name == given.name))
                if found.first() is not None:
                    raise exists
                row = QosSpecs(name=given.name, consumer=given.consumer)
                session.add(row)
                await session.flush()
                session.add_all(
                    QosSpecsItem(specs_id=row.id, key=key, value=value)
                    for key, value in given.specs.items()
                )
                await session.flush()
                return await _record(session, row)
        except IntegrityError:
            # Created by another request at the same time.
            raise exists from None

    async def update(self, ctx: RequestContext, qos_id: str, specs: dict[str, str | None]) -> None:
        """Merges ``specs`` (``consumer`` sets the consumer) into the specs' keys."""
        authorize(ctx, RULE.format("update"))
        async with self._db.session() as session:
            row = await _get_row(session, qos_id)
            changes = dict(specs)
            if "consumer" in changes:
                row.consumer = check_consumer(changes.pop("consumer"))
            items = await _items(session, qos_id)
            for key, value in changes.items():
                if key in items:
                    items[key].value = value
                else:
                    session.add(QosSpecsItem(specs_id=qos_id, key=key, value=value))
            row.updated_at = utcnow()
            session.add(row)

    async def delete(self, qos_id: str, force: str | None) -> None:
        """Refused while volume types have the specs, unless ``force`` (they lose them)."""
        forced = force is not None and strict_bool("force", force)
        async with self._db.session() as session:
            await _get_row(session, qos_id)
            if await _associations(session, qos_id):
                if not forced:
                    raise InvalidInput("Qos specs still in use.")
                await _disassociate_all(session, qos_id)
            await session.exec(delete(QosSpecsItem).where(col(QosSpecsItem.specs_id) == qos_id))
            await session.exec(delete(QosSpecs).where(col(QosSpecs.id) == qos_id))

    async def delete_keys(self, ctx: RequestContext, qos_id: str, keys: Sequence[str]) -> None:
        """Removes ``keys`` in order; the first one not set is a 404 (those before it stay
        removed, as in Cinder)."""
        authorize(ctx, RULE.format("delete"))
        missing: str | None = None
        async with self._db.session() as session:
            await _get_row(session, qos_id)
            items = await _items(session, qos_id)
            for key in keys:
                if key not in items:
                    missing = key
                    break
                await session.delete(items.pop(key))
        if missing is not None:
            raise NotFound(f"QoS spec {qos_id} has no spec with key {missing}.")

    async def associations(self, qos_id: str) -> list[QosAssociation]:
        async with self._db.read() as session:
            await _get_row(session, qos_id)
            return await _associations(session, qos_id)

    async def associate(self, qos_id: str, vol_type_id: str | None) -> None:
        """The type gets the specs; refused when it has others already."""
        type_id = _type_id_required(vol_type_id)
        async with self._db.session() as session:
            await _get_row(session, qos_id)
            volume_type = await _get_type(session, type_id)
            current = volume_type.qos_specs_id
            if current is not None and current != qos_id:
                raise InvalidInput(
                    f"Invalid volume type: Type {type_id} is already associated with another "
                    f"qos specs: {current}"
                )
            volume_type.qos_specs_id = qos_id
            session.add(volume_type)

    async def disassociate(self, qos_id: str, vol_type_id: str | None) -> None:
        """The type loses the specs (nothing changes when it has others)."""
        type_id = _type_id_required(vol_type_id)
        async with self._db.session() as session:
            await _get_row(session, qos_id)
            await _get_type(session, type_id)
            await session.exec(
                update(VolumeType)
                .where(col(VolumeType.id) == type_id, col(VolumeType.qos_specs_id) == qos_id)
                .values(qos_specs_id=None)
            )

    async def disassociate_all(self, qos_id: str) -> None:
        async with self._db.session() as session:
            await _get_row(session, qos_id)
            await _disassociate_all(session, qos_id)


async def _associations(session: AsyncSession, qos_id: str) -> list[QosAssociation]:
    query = (
        select(VolumeType.id, VolumeType.name)
        .where(VolumeType.qos_specs_id == qos_id)
        .order_by(col(VolumeType.name))
    )
    return [QosAssociation(id=type_id, name=name) for type_id, name in await session.exec(query)]


async def _disassociate_all(session: AsyncSession, qos_id: str) -> None:
    await session.exec(
        update(VolumeType).where(col(VolumeType.qos_specs_id) == qos_id).values(qos_specs_id=None)
    )
