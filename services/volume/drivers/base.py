"""The driver interface every backend implements, and the capacity it reports.

A driver knows nothing of gRPC nor of the database: it creates and deletes images by volume id
and reports its capacity. Every method may block only off the event loop.

Two protocols:

* :class:`VolumeDriver` is what the manager's flows call today (create, delete, list, capacity);
* :class:`BlockStorageDriver` adds what later features build on, as Cinder's ``BaseVD`` has
  them: snapshots, volumes from a snapshot or from another volume, extend, revert, and the
  connection information a host needs to attach the volume. Both shipped drivers (``file``,
  ``rbd``) implement it; ``create_driver`` returns one.

Image names are Cinder's: ``volume-<id>`` and ``snapshot-<id>``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Literal, Protocol

from cindermesh.settings import BackendSettings
from services.volume.errors import DriverError

__all__ = [
    "BACKEND_DOWN",
    "BACKEND_UP",
    "BlockStorageDriver",
    "CapacityStats",
    "ClonePolicy",
    "ConnectionInfo",
    "DriverInfo",
    "LocalConnectionData",
    "RbdConnectionData",
    "SnapshotIsBusy",
    "SnapshotRef",
    "SourceVolumeRef",
    "VolumeDriver",
    "VolumeIsBusy",
    "snapshot_name",
    "volume_name",
]

BACKEND_UP = "up"
BACKEND_DOWN = "down"


def volume_name(volume_id: str) -> str:
    """Cinder's ``volume.name``: the image of a volume."""
    return f"volume-{volume_id}"


def snapshot_name(snapshot_id: str) -> str:
    """Cinder's ``snapshot.name``."""
    return f"snapshot-{snapshot_id}"


class VolumeIsBusy(DriverError):
    """Cinder's ``VolumeIsBusy``: the image is in use (watchers, children) and was kept."""

    def __init__(self, name: str, reason: str = "") -> None:
        super().__init__(f"volume {name} is still busy{': ' + reason if reason else ''}")
        self.volume_name = name


class SnapshotIsBusy(DriverError):
    """Cinder's ``SnapshotIsBusy``: the snapshot has dependent volumes and was kept."""

    def __init__(self, name: str) -> None:
        super().__init__(f"snapshot {name} is busy: it has dependent volumes")
        self.snapshot_name = name


@dataclass(frozen=True)
class DriverInfo:
    """What a driver says about itself in capability reports."""

    #: Short name used in span names: ``volume.driver.<kind>.create``.
    kind: str
    vendor_name: str
    driver_version: str
    storage_protocol: str


@dataclass(frozen=True)
class CapacityStats:
    """One pool's capacity, Cinder's ``get_volume_stats`` pool keys, in GiB."""

    total_capacity_gb: float
    free_capacity_gb: float
    #: Sum of the sizes of the volumes on the pool.
    allocated_capacity_gb: float
    provisioned_capacity_gb: float
    thin_provisioning_support: bool
    thick_provisioning_support: bool
    max_over_subscription_ratio: float
    reserved_percentage: int
    total_volumes: int
    #: Cinder's ``backend_state``: ``down`` while the driver cannot reach its storage (the
    #: capacities are then 0, so that nothing is placed there).
    backend_state: str = BACKEND_UP
    #: Cinder's ``location_info`` (RBD: ``cluster:conf:fsid:user:pool``), if the driver has one.
    location_info: str | None = None
    #: Further capabilities, as strings (matched by volume-type extra specs).
    extra: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ClonePolicy:
    """How clones are made (Cinder's ``rbd_flatten_volume_from_snapshot`` and
    ``rbd_max_clone_depth``)."""

    #: A volume created from a snapshot is flattened (made independent of it) at once.
    flatten_volume_from_snapshot: bool = False
    #: A clone of a volume that already has this many ancestors is flattened; 0 or less: a
    #: clone of a volume is always a full copy.
    max_clone_depth: int = 5

    @classmethod
    def from_settings(cls, backend: BackendSettings) -> ClonePolicy:
        return cls(
            flatten_volume_from_snapshot=backend.rbd_flatten_volume_from_snapshot,
            max_clone_depth=backend.rbd_max_clone_depth,
        )

    @property
    def full_copy(self) -> bool:
        """A clone of a volume is a full copy, never copy-on-write."""
        return self.max_clone_depth <= 0

    def flatten_clone(self, source_depth: int) -> bool:
        """Whether a copy-on-write clone of a volume with ``source_depth`` ancestors must be
        flattened (Cinder: depth >= ``rbd_max_clone_depth``)."""
        return source_depth >= self.max_clone_depth


@dataclass(frozen=True)
class SnapshotRef:
    """A snapshot as a driver needs it."""

    id: str
    volume_id: str
    #: The size of the volume when the snapshot was taken, in GiB.
    volume_size_gb: int

    @property
    def name(self) -> str:
        return snapshot_name(self.id)

    @property
    def volume_name(self) -> str:
        return volume_name(self.volume_id)


@dataclass(frozen=True)
class SourceVolumeRef:
    """The source of a clone."""

    id: str
    size_gb: int

    @property
    def name(self) -> str:
        return volume_name(self.id)


@dataclass(frozen=True)
class RbdConnectionData:
    """Cinder's RBD ``initialize_connection`` ``data`` (what os-brick's RBD connector reads)."""

    #: ``pool/image``.
    name: str
    hosts: tuple[str, ...]
    ports: tuple[str, ...]
    cluster_name: str
    auth_enabled: bool
    auth_username: str
    secret_type: str
    secret_uuid: str | None
    volume_id: str
    discard: bool = True


@dataclass(frozen=True)
class LocalConnectionData:
    """A volume attached by its local path (os-brick's ``local`` connector)."""

    device_path: str
    volume_id: str


@dataclass(frozen=True)
class ConnectionInfo:
    """Cinder's connection info: ``{"driver_volume_type": ..., "data": {...}}``."""

    driver_volume_type: Literal["rbd", "local"]
    data: RbdConnectionData | LocalConnectionData

    def as_dict(self) -> dict[str, object]:
        """Cinder's JSON shape (lists for the hosts and ports)."""
        data = {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self.data).items()}
        return {"driver_volume_type": self.driver_volume_type, "data": data}


class VolumeDriver(Protocol):
    """What the manager's create, delete and recovery flows call."""

    @property
    def info(self) -> DriverInfo: ...

    async def do_setup(self) -> None:
        """Prepares the driver; called once before any other call. A driver whose storage is
        unreachable may return and report ``backend_state = down`` until it reconnects."""

    async def create_volume(self, volume_id: str, size_gb: int) -> None:
        """Creates the image; creating an existing one again succeeds (idempotent)."""

    async def delete_volume(self, volume_id: str) -> None:
        """Deletes the image; deleting one already gone succeeds. Raises VolumeIsBusy (and
        keeps the image) while it is in use."""

    async def list_volumes(self) -> list[str]:
        """The ids of the volumes whose images are on the backend."""
        ...

    async def get_capacity(self) -> CapacityStats: ...

    async def close(self) -> None: ...


class BlockStorageDriver(VolumeDriver, Protocol):
    """The whole driver interface (Cinder's ``BaseVD`` subset cindermesh builds on)."""

    @property
    def clone_policy(self) -> ClonePolicy: ...

    async def wait_up(self) -> None:
        """Returns once the storage is reachable (at once for a local driver)."""

    async def create_snapshot(self, snapshot: SnapshotRef) -> None:
        """Snapshots the volume's image; an existing snapshot of that name is success."""

    async def delete_snapshot(self, snapshot: SnapshotRef) -> None:
        """Deletes the snapshot; already gone is success. Raises SnapshotIsBusy if volumes
        still depend on it (after trying to flatten them, as Cinder does)."""

    async def create_volume_from_snapshot(
        self, volume_id: str, size_gb: int, snapshot: SnapshotRef
    ) -> None:
        """A new volume with the snapshot's content, grown to ``size_gb`` if larger; flattened
        if ``clone_policy.flatten_volume_from_snapshot``."""

    async def create_cloned_volume(
        self, volume_id: str, size_gb: int, source: SourceVolumeRef
    ) -> None:
        """A new volume with ``source``'s content (Cinder's clone from volume, obeying
        ``clone_policy.max_clone_depth``), grown to ``size_gb`` if larger."""

    async def extend_volume(self, volume_id: str, new_size_gb: int) -> None:
        """Grows the image to ``new_size_gb``."""

    async def revert_to_snapshot(self, volume_id: str, snapshot: SnapshotRef) -> None:
        """Rolls the volume's content back to the snapshot."""

    async def initialize_connection(
        self, volume_id: str, connector: Mapping[str, object] | None = None
    ) -> ConnectionInfo:
        """What a host needs to attach the volume."""
        ...

    async def terminate_connection(
        self, volume_id: str, connector: Mapping[str, object] | None = None
    ) -> None:
        """The host detached the volume (nothing to do for ``rbd`` and ``file``)."""

    async def read_volume_data(self, volume_id: str, offset: int, length: int) -> bytes:
        """Up to ``length`` bytes of the volume's image from ``offset`` (fewer at its end,
        none past it): a migration's source reads the image chunk by chunk."""
        ...

    async def write_volume_data(self, volume_id: str, offset: int, data: bytes) -> None:
        """Writes ``data`` into the volume's image at ``offset`` (within its size): a
        migration's destination fills the image it created."""
