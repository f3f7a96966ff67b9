"""Volume drivers, chosen by ``DriverKind`` in ``create_driver`` (no import strings)."""

from __future__ import annotations

from cindermesh.settings import BackendSettings, DriverKind, Settings
from services.volume.drivers.base import (
    BlockStorageDriver,
    CapacityStats,
    DriverInfo,
    VolumeDriver,
)
from services.volume.drivers.file import FileDriver

__all__ = ["BlockStorageDriver", "CapacityStats", "DriverInfo", "VolumeDriver", "create_driver"]


def create_driver(settings: Settings, backend: BackendSettings) -> BlockStorageDriver:
    match backend.driver:
        case DriverKind.FILE:
            return FileDriver(backend, settings.data_dir)
        case DriverKind.RBD:
            # Imported here: the rados/rbd bindings load only when a backend uses them.
            from services.volume.drivers.rbd import RbdDriver

            return RbdDriver(backend)
