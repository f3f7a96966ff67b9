"""What the scheduler is asked to place: typed mirrors of the contract's messages."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = ["RetryState", "ScheduleRequest", "VolumeSpec", "VolumeTypeSpec"]


@dataclass(frozen=True)
class VolumeTypeSpec:
    id: str = ""
    name: str = ""
    extra_specs: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class VolumeSpec:
    """Cinder's request_spec for one volume."""

    volume_id: str
    project_id: str
    size_gb: int
    #: Requested zone; empty: any.
    availability_zone: str = ""
    volume_type: VolumeTypeSpec = field(default_factory=VolumeTypeSpec)
    #: The snapshot or the volume it is created from (empty: none).
    snapshot_id: str = ""
    source_volid: str = ""
    #: ``host@backend`` that holds the source: the volume is placed there only.
    source_backend: str = ""


@dataclass(frozen=True)
class RetryState:
    """Cinder's ``filter_properties['retry']``."""

    #: Attempts made before the one the receiver is to make (the scheduler's new placement,
    #: or the manager's create); the manager adds one when its attempt fails.
    num_attempts: int = 0
    #: Pools (host@backend#pool) tried before, oldest first.
    hosts: tuple[str, ...] = ()
    #: Why the last attempt failed.
    last_error: str = ""


@dataclass(frozen=True)
class ScheduleRequest:
    spec: VolumeSpec
    #: None on a first attempt.
    retry: RetryState | None = None
