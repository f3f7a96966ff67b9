"""What every filter takes and is: the request (Cinder's ``request_spec`` and
``filter_properties`` as the filters read them) and a named check."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from services.scheduler.backend_state import PoolState

__all__ = ["Check", "FilterRequest", "PoolFilter", "passes"]


@dataclass(frozen=True)
class FilterRequest:
    """What the filters and weighers look at (Cinder's request_spec + filter_properties)."""

    volume_id: str
    size_gb: int
    #: Requested zone (``resource_properties.availability_zone``); empty: any.
    availability_zone: str = ""
    #: Cinder's ``request_spec['availability_zones']``: any of these; takes precedence over
    #: ``availability_zone`` when not empty.
    availability_zones: tuple[str, ...] = ()
    #: The volume type's extra specs (a value of None is Cinder's ``None`` requirement).
    extra_specs: Mapping[str, str | None] = field(default_factory=dict)
    #: ``host@backend`` (or ``host@backend#pool``) that holds the source; empty: any.
    source_backend: str = ""
    #: The ``same_host`` hint: None without it; else the ``host`` (``host@backend#pool``) of
    #: each hinted volume the database has (empty: it named none that exists with a host).
    same_host: tuple[str, ...] | None = None
    #: The ``different_host`` hint, as ``same_host``.
    different_host: tuple[str, ...] | None = None
    #: The ``query`` hint (JsonFilter), JSON text; None or empty: no query.
    query: str | None = None
    #: Pools (``host@backend#pool``) tried on earlier attempts (Cinder's ``retry.backends``).
    tried_hosts: tuple[str, ...] = ()
    #: Attempts made before this one (Cinder's ``retry.num_attempts`` less this one).
    num_attempts: int = 0

    @property
    def thin(self) -> bool:
        """Cinder provisions thin unless the type says ``provisioning:type=thick``."""
        return self.extra_specs.get("provisioning:type") != "thick"


#: A filter's test of one pool: None if it passes, else why it was filtered out.
Check = Callable[[PoolState, FilterRequest], str | None]


@dataclass(frozen=True)
class PoolFilter:
    """One filter: its Cinder name (the ``scheduler.filter.<name>`` span) and its check."""

    name: str
    check: Check

    def passes(self, pool: PoolState, request: FilterRequest) -> bool:
        """True if the pool passes (``check`` says nothing against it)."""
        return self.check(pool, request) is None


def passes(pool_filter: PoolFilter, pool: PoolState, request: FilterRequest) -> bool:
    """True if ``pool`` passes ``pool_filter``."""
    return pool_filter.check(pool, request) is None
