"""Typed requests the manager works on, converted from the protos at the edges."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = [
    "CreateRequest",
    "RetryState",
    "VolumeTypeRef",
    "backend_host",
    "backend_of",
    "pool_host",
]


@dataclass(frozen=True)
class VolumeTypeRef:
    id: str
    name: str
    #: The type's extra specs, as sorted (key, value) pairs.
    extra_specs: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class RetryState:
    """Cinder's ``filter_properties['retry']``."""

    #: Attempts made before the current one.
    num_attempts: int = 0
    #: Pools (host@backend#pool) already tried, the current one not included.
    hosts: tuple[str, ...] = ()
    #: Why the previous attempt failed.
    last_error: str = ""


@dataclass(frozen=True)
class CreateRequest:
    volume_id: str
    project_id: str
    size_gb: int
    availability_zone: str
    volume_type: VolumeTypeRef
    #: The pool chosen by the scheduler, host@backend#pool.
    host: str
    retry: RetryState = field(default_factory=RetryState)
    #: The snapshot or the volume it is created from (empty: none).
    snapshot_id: str = ""
    source_volid: str = ""

    @property
    def source_backend(self) -> str:
        """The backend a volume made from a source is pinned to: the one it was placed on,
        which holds the source (empty without a source)."""
        return backend_of(self.host) if self.snapshot_id or self.source_volid else ""


def backend_of(host: str) -> str:
    """``host@backend`` of ``host@backend#pool``."""
    return host.partition("#")[0]


def backend_host(host_name: str, backend_name: str) -> str:
    """``host@backend``: the Service row's key and the capability report's backend."""
    return f"{host_name}@{backend_name}"


def pool_host(host_name: str, backend_name: str) -> str:
    """The one pool of a backend, named after it: ``host@backend#backend``."""
    return f"{backend_host(host_name, backend_name)}#{backend_name}"
