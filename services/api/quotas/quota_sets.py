"""Quota sets and limits: Cinder's ``os-quota-sets`` and ``limits`` controllers, as plain data.

A project's limit for a resource is its own ``quotas`` row, else the ``default`` quota class's
row (``quota_classes``, Cinder's ``use_default_quota_class``), else the configured default
(``-1`` for the per-volume-type resources); a quota class's limit is its own row, else the same
default (``cindermesh.db.quota.limits_for`` and ``class_limits``: the one precedence for the
quota APIs and the reservations alike). The resources are Cinder's: the fixed ones, and
``volumes_<type>``, ``gigabytes_<type>``, ``snapshots_<type>`` for every volume type in the
database. Usage comes from ``quota_usages`` (``in_use`` and ``reserved``).

The checks of an update follow Cinder's order: the body schema (with its ``quota_set`` format
check), then the policy, then the target id's length, then "not below current usage".
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from sqlmodel import col, delete, select
from sqlmodel.ext.asyncio.session import AsyncSession

from cindermesh.db import quota
from cindermesh.db.engine import Database
from cindermesh.db.models import Quota, QuotaClass, QuotaUsage, VolumeType
from cindermesh.errors import InvalidInput
from cindermesh.settings import QuotaSettings
from services.api import policy
from services.api.edge.request_context import RequestContext
from services.api.schema import (
    JsonValue,
    check_non_empty,
    check_pattern,
    check_present,
    check_string_length,
    check_type,
    invalid_field,
    invalid_input,
    require_object,
    strict_bool,
    validate_integer,
)

__all__ = [
    "DEFAULT_QUOTA_CLASS",
    "AbsoluteLimits",
    "QuotaEntry",
    "QuotaSets",
    "ShownQuotaSet",
    "check_not_below_usage",
    "parse_usage_flag",
    "policy_message",
    "resource_names",
    "validate_class_update",
    "validate_update",
]

#: Cinder's QUOTAS and GROUP_QUOTAS resources that do not depend on volume types.
FIXED_RESOURCES = (
    "volumes",
    "snapshots",
    "gigabytes",
    "backups",
    "backup_gigabytes",
    "per_volume_gigabytes",
    "groups",
)
PER_TYPE_PARTS = ("volumes", "gigabytes", "snapshots")
#: Keys an update body may carry and that are ignored.
NON_QUOTA_KEYS = ("tenant_id", "id")
MAX_LIMIT = 2147483647
MAX_PROJECT_ID_LENGTH = 255
#: The quota class whose limits are every project's defaults (Cinder's ``_DEFAULT_QUOTA_NAME``).
DEFAULT_QUOTA_CLASS = quota.DEFAULT_QUOTA_CLASS
#: ``parameter_types.quota_class_set``'s value pattern (strings of digits).
CLASS_VALUE_PATTERN = "^[0-9]*$"


@dataclass(frozen=True)
class QuotaEntry:
    """One resource of a project: its limit and what is counted against it."""

    limit: int
    in_use: int = 0
    reserved: int = 0


@dataclass(frozen=True)
class AbsoluteLimits:
    """Cinder's ``limits.absolute``: limits and ``in_use`` of the five classic resources."""

    max_total_volume_gigabytes: int
    max_total_backup_gigabytes: int
    max_total_volumes: int
    max_total_snapshots: int
    max_total_backups: int
    total_volumes_used: int
    total_gigabytes_used: int
    total_snapshots_used: int
    total_backups_used: int
    total_backup_gigabytes_used: int


@dataclass(frozen=True)
class ShownQuotaSet:
    """What a show answers: every resource, with or without its usage."""

    entries: dict[str, QuotaEntry]
    with_usage: bool


def policy_message(rule: str) -> str:
    return policy.policy_message(f"volume_extension:quotas:{rule}")


def resource_names(type_names: Iterable[str]) -> list[str]:
    """Every quota resource, given the names of the volume types."""
    names = list(FIXED_RESOURCES)
    for type_name in type_names:
        names += [f"{part}_{type_name}" for part in PER_TYPE_PARTS]
    return names


def parse_usage_flag(value: str | None) -> bool:
    """``?usage=``: absent is False; else a strict boolean string, unstripped (Cinder's
    ``get_bool_param``)."""
    return value is not None and strict_bool("usage", value)


def validate_update(quota_set: JsonValue, present: bool, known: Sequence[str]) -> dict[str, int]:
    """Cinder's update schema: ``quota_set`` required, an object with at least one key; its
    format check collects unknown keys (reported after the values of the known ones are
    checked) and ignores ``id`` and ``tenant_id``. Returns the limits to set, in body order."""
    check_present(present, "quota_set")
    quota_set = require_object("quota_set", quota_set)
    check_non_empty("quota_set", quota_set)
    bad_keys: list[str] = []
    limits: dict[str, int] = {}
    for key, value in quota_set.items():
        if key in NON_QUOTA_KEYS:
            continue
        if key not in known:
            bad_keys.append(key)
            continue
        # oslo's validate_integer(value, key, -1, DB_MAX_INT)
        limits[key] = validate_integer(key, value, -1, MAX_LIMIT)
    if bad_keys:
        raise invalid_input(f"Bad key(s) in quota set: {', '.join(bad_keys)}")
    return limits


def _number(value: int | str) -> int | float | None:
    """Cinder's validator reads a string's number for ``minimum`` and ``maximum``."""
    try:
        return int(value)
    except ValueError:
        try:
            return float(value)
        except ValueError:
            return None


def _class_limit(key: str, value: JsonValue) -> int:
    """One value of ``parameter_types.quota_class_set``: an integer or a digit string, at
    least -1 and at most ``MAX_LIMIT``, in jsonschema's keyword order."""
    check_type(key, value, ("integer", "string"))
    assert isinstance(value, int | str)
    check_pattern(key, value, CLASS_VALUE_PATTERN)
    number = _number(value)
    if number is not None and number < quota.UNLIMITED:
        raise invalid_field(key, value, f"{number!r} is less than the minimum of -1")
    check_non_empty(key, value)
    if number is not None and number > MAX_LIMIT:
        raise invalid_field(key, value, f"{number!r} is greater than the maximum of {MAX_LIMIT}")
    return int(value)


def validate_class_update(
    quota_class_set: JsonValue, present: bool, known: Sequence[str]
) -> dict[str, int]:
    """Cinder's quota class update schema: ``quota_class_set`` required, an object; its format
    check names every unknown key first, then each value is checked. Returns the limits to
    set."""
    check_present(present, "quota_class_set")
    quota_class_set = require_object("quota_class_set", quota_class_set)
    bad_keys = [key for key in quota_class_set if key not in known]
    if bad_keys:
        raise invalid_input(f"Bad key(s) in quota class set: {', '.join(bad_keys)}")
    return {key: _class_limit(key, value) for key, value in quota_class_set.items()}


def check_not_below_usage(limits: Mapping[str, int], usages: Mapping[str, QuotaEntry]) -> None:
    """A new limit may not be below ``in_use + reserved`` (except -1 and
    ``per_volume_gigabytes``, which counts nothing)."""
    for key, limit in limits.items():
        if key == "per_volume_gigabytes" or limit == quota.UNLIMITED:
            continue
        entry = usages.get(key)
        used = entry.in_use + entry.reserved if entry else 0
        if limit < used:
            raise InvalidInput(
                f"Quota {key} limit must be equal or greater than existing resources. "
                f"Current usage is {used} and the requested limit is {limit}."
            )


class QuotaSets:
    """The operations behind QuotaService; the servicer only converts to and from protos."""

    def __init__(self, db: Database, defaults: QuotaSettings) -> None:
        self._db = db
        self._defaults = defaults

    async def show(self, ctx: RequestContext, target: str, usage: str | None) -> ShownQuotaSet:
        """Limits (and usage) of ``target``: the caller's own project, or any for an admin."""
        _authorize(ctx, target, "show")
        with_usage = parse_usage_flag(usage)
        async with self._db.read() as session:
            return ShownQuotaSet(await self._entries(session, target), with_usage)

    async def defaults(self, ctx: RequestContext, target: str) -> dict[str, int]:
        _authorize(ctx, target, "show")
        async with self._db.read() as session:
            names = resource_names(await _type_names(session))
            return await self._default_limits(session, names)

    async def class_limits(self, class_name: str) -> dict[str, int]:
        """A quota class's limits (admins: the servicer's edge checks the policy)."""
        async with self._db.read() as session:
            return await self._class_limits(session, class_name)

    async def update_class(
        self, ctx: RequestContext, class_name: str, quota_class_set: JsonValue, present: bool
    ) -> dict[str, int]:
        """Sets some limits of a class (admins; no usage to compare with); answers all of
        them."""
        async with self._db.session() as session:
            names = resource_names(await _type_names(session))
            limits = validate_class_update(quota_class_set, present, names)
            policy.authorize(ctx, "volume_extension:quota_classes:update")
            check_string_length("quota_class_name", class_name, MAX_PROJECT_ID_LENGTH)
            for key, limit in limits.items():
                row = await session.get(QuotaClass, (class_name, key))
                if row is None:
                    session.add(QuotaClass(class_name=class_name, resource=key, hard_limit=limit))
                else:
                    row.hard_limit = limit
            await session.flush()
            return await self._class_limits(session, class_name)

    async def update(
        self, ctx: RequestContext, target: str, quota_set: JsonValue, present: bool
    ) -> dict[str, int]:
        """Sets some limits of ``target`` (admins); answers all of its limits."""
        async with self._db.session() as session:
            names = resource_names(await _type_names(session))
            limits = validate_update(quota_set, present, names)
            _authorize(ctx, target, "update")
            check_string_length("quota_set_name", target, MAX_PROJECT_ID_LENGTH)
            check_not_below_usage(limits, await _usages(session, target))
            for key, limit in limits.items():
                row = await session.get(Quota, (target, key))
                if row is None:
                    session.add(Quota(project_id=target, resource=key, hard_limit=limit))
                else:
                    row.hard_limit = limit
            await session.flush()
            entries = await self._entries(session, target)
        return {key: entry.limit for key, entry in entries.items()}

    async def delete(self, ctx: RequestContext, target: str) -> None:
        """Drops the project's own limits (admins); its usage stays."""
        _authorize(ctx, target, "delete")
        async with self._db.session() as session:
            await session.exec(delete(Quota).where(col(Quota.project_id) == target))

    async def limits(
        self, ctx: RequestContext, project_id: str | None, tenant_id: str | None
    ) -> AbsoluteLimits:
        """The caller's project; from 3.39 an admin may name another (``project_id``, else
        ``tenant_id``)."""
        target = ctx.project_id
        if ctx.caller.is_admin and ctx.version.at_least(39):
            target = project_id if project_id is not None else (tenant_id or ctx.project_id)
        async with self._db.read() as session:
            entries = await self._entries(session, target)
        return AbsoluteLimits(
            max_total_volume_gigabytes=entries["gigabytes"].limit,
            max_total_backup_gigabytes=entries["backup_gigabytes"].limit,
            max_total_volumes=entries["volumes"].limit,
            max_total_snapshots=entries["snapshots"].limit,
            max_total_backups=entries["backups"].limit,
            total_volumes_used=entries["volumes"].in_use,
            total_gigabytes_used=entries["gigabytes"].in_use,
            total_snapshots_used=entries["snapshots"].in_use,
            total_backups_used=entries["backups"].in_use,
            total_backup_gigabytes_used=entries["backup_gigabytes"].in_use,
        )

    async def _default_limits(self, session: AsyncSession, names: Sequence[str]) -> dict[str, int]:
        """The ``default`` class's limits over the configured ones (-1 per type)."""
        return await quota.defaults_for(session, self._defaults, names)

    async def _class_limits(self, session: AsyncSession, class_name: str) -> dict[str, int]:
        names = resource_names(await _type_names(session))
        return await quota.class_limits(session, class_name, self._defaults, names)

    async def _entries(self, session: AsyncSession, target: str) -> dict[str, QuotaEntry]:
        names = resource_names(await _type_names(session))
        limits = await quota.limits_for(session, target, self._defaults, names)
        usages = await _usages(session, target)
        empty = QuotaEntry(0)
        return {
            name: QuotaEntry(
                limit=limit,
                in_use=usages.get(name, empty).in_use,
                reserved=usages.get(name, empty).reserved,
            )
            for name, limit in limits.items()
        }


def _authorize(ctx: RequestContext, target: str, rule: str) -> None:
    """Cinder's ``volume_extension:quotas:<rule>`` on the target project (by default show:
    the project's readers or admins; update and delete: admins only)."""
    policy.authorize(ctx, f"volume_extension:quotas:{rule}", {"project_id": target})


async def _type_names(session: AsyncSession) -> list[str]:
    return list(await session.exec(select(VolumeType.name).order_by(col(VolumeType.name))))


async def _usages(session: AsyncSession, project_id: str) -> dict[str, QuotaEntry]:
    rows = await session.exec(select(QuotaUsage).where(QuotaUsage.project_id == project_id))
    return {row.resource: QuotaEntry(0, row.in_use, row.reserved) for row in rows}
