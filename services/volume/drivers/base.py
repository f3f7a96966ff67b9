"""The driver interface every backend implements, and the capacity it reports.

A driver knows nothing of gRPC nor of the database: it creates and deletes images by volume id
and reports its capacity. Every method may block only off the event loop.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

__all__ = ["CapacityStats", "DriverInfo", "VolumeDriver"]


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


class VolumeDriver(Protocol):
    @property
    def info(self) -> DriverInfo: ...

    async def do_setup(self) -> None:
        """Connects to the backend; called once before any other call."""

    async def create_volume(self, volume_id: str, size_gb: int) -> None:
        """Creates the image; creating an existing one again succeeds (idempotent)."""

    async def delete_volume(self, volume_id: str) -> None:
        """Deletes the image; deleting one already gone succeeds."""

    async def list_volumes(self) -> list[str]:
        """The ids of the volumes whose images are on the backend."""
        ...

    async def get_capacity(self) -> CapacityStats: ...

    async def close(self) -> None: ...
