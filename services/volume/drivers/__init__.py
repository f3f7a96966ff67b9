"""Volume drivers, chosen by ``DriverKind`` in ``create_driver`` (no import strings)."""

from __future__ import annotations

from cindermesh.settings import BackendSettings, DriverKind, Settings
from services.volume.drivers.base import CapacityStats, DriverInfo, VolumeDriver
from services.volume.drivers.file import FileDriver
from services.volume.errors import UnsupportedDriver

__all__ = ["CapacityStats", "DriverInfo", "VolumeDriver", "create_driver"]


def create_driver(settings: Settings, backend: BackendSettings) -> VolumeDriver:
    match backend.driver:
        case DriverKind.FILE:
            return FileDriver(backend, settings.data_dir)
        case DriverKind.RBD:
            raise UnsupportedDriver(
                f"backend {backend.name}: the rbd driver is not implemented yet; "
                "use driver = 'file'"
            )
