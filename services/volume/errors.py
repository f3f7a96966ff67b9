"""Errors of the volume manager. gRPC codes are attached in ``servicer`` only.

VolumeManagerError
├── NotReschedulable          another backend would not do better: the volume goes to error
│   ├── VolumeNotFound        the row is gone
│   ├── VolumeStateChanged    the row is not in the state this work expects
│   ├── SnapshotNotFound      the snapshot's row is gone
│   └── SnapshotStateChanged  the snapshot's row is not in the state this work expects
├── WrongBackend              the request names a host this process does not serve
├── InvalidConnector          a host's connector the manager or its driver refuses
├── ConnectionFailed          the backend could not give (or end) a host's connection
├── DriverError               the backend failed (reschedulable)
│   └── DriverNotInitialized
└── UnsupportedDriver         the configured driver kind is not available yet
"""

from __future__ import annotations

from cindermesh.errors import CindermeshError

__all__ = [
    "ConnectionFailed",
    "DriverError",
    "DriverNotInitialized",
    "InvalidConnector",
    "NotReschedulable",
    "SnapshotNotFound",
    "SnapshotStateChanged",
    "UnsupportedDriver",
    "VolumeManagerError",
    "VolumeNotFound",
    "VolumeStateChanged",
    "WrongBackend",
    "is_reschedulable",
]


class VolumeManagerError(CindermeshError):
    pass


class NotReschedulable(VolumeManagerError):
    pass


class VolumeNotFound(NotReschedulable):
    def __init__(self, volume_id: str) -> None:
        super().__init__(f"Volume {volume_id} could not be found.")
        self.volume_id = volume_id


class VolumeStateChanged(NotReschedulable):
    def __init__(self, volume_id: str, expected: str, actual: str) -> None:
        super().__init__(f"Volume {volume_id} is {actual!r}, expected {expected!r}.")
        self.volume_id = volume_id
        self.actual = actual


class SnapshotNotFound(NotReschedulable):
    def __init__(self, snapshot_id: str) -> None:
        super().__init__(f"Snapshot {snapshot_id} could not be found.")
        self.snapshot_id = snapshot_id


class SnapshotStateChanged(NotReschedulable):
    def __init__(self, snapshot_id: str, expected: str, actual: str) -> None:
        super().__init__(f"Snapshot {snapshot_id} is {actual!r}, expected {expected!r}.")
        self.snapshot_id = snapshot_id
        self.actual = actual


class WrongBackend(VolumeManagerError):
    pass


class InvalidConnector(VolumeManagerError):
    """Cinder's ``InvalidConnectorException``, answered as its ``InvalidInput``."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"Invalid input received: {reason}")


class ConnectionFailed(VolumeManagerError):
    """Cinder's ``VolumeBackendAPIException`` of the connection operations; the message is
    Cinder's (``Driver initialize connection failed (error: ...).``)."""


class DriverError(VolumeManagerError):
    pass


class DriverNotInitialized(DriverError):
    def __init__(self, driver: str) -> None:
        super().__init__(f"Volume driver {driver} not initialized.")


class UnsupportedDriver(VolumeManagerError):
    pass


def is_reschedulable(error: BaseException) -> bool:
    """Cinder's rule: every failure is retried elsewhere except the listed kinds."""
    return isinstance(error, Exception) and not isinstance(error, NotReschedulable)
