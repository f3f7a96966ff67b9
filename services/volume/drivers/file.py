"""The local-file driver: one sparse file per volume, the embedded default.

``<data_dir>/volumes/<backend>/volume-<id>`` is truncated to the volume's size and never
written, so it takes (almost) no blocks. Capacity comes from the configuration: total is
``total_capacity_gb``, allocated is the sum of the volume sizes (counted once at set-up, then
kept up to date by create and delete), free is total minus the blocks really used, and the pool
is thin provisioned. All file I/O runs in a worker thread.
"""

from __future__ import annotations

import asyncio
import os
import re
from dataclasses import dataclass
from pathlib import Path

from opentelemetry.util.types import AttributeValue

from cindermesh.settings import BackendSettings
from cindermesh.telemetry.tracing import tracer
from services.volume.drivers.base import CapacityStats, DriverInfo
from services.volume.errors import DriverError, DriverNotInitialized

__all__ = ["FileDriver"]

GIB = 1024**3
_PREFIX = "volume-"
_VOLUME_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
_INFO = DriverInfo(
    kind="file", vendor_name="cindermesh", driver_version="1.0.0", storage_protocol="file"
)


@dataclass(frozen=True)
class _FileUsage:
    size_gb: int
    used_bytes: int


def _ceil_gib(size_bytes: int) -> int:
    return -(-size_bytes // GIB)


def _usage(path: Path) -> _FileUsage:
    st = path.stat()
    return _FileUsage(size_gb=_ceil_gib(st.st_size), used_bytes=st.st_blocks * 512)


def _scan(directory: Path) -> dict[str, _FileUsage]:
    directory.mkdir(parents=True, exist_ok=True)
    found: dict[str, _FileUsage] = {}
    for entry in directory.iterdir():
        if entry.name.startswith(_PREFIX) and entry.is_file():
            found[entry.name.removeprefix(_PREFIX)] = _usage(entry)
    return found


def _create_sparse(path: Path, size_bytes: int) -> _FileUsage:
    fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o600)
    try:
        os.ftruncate(fd, size_bytes)
    finally:
        os.close(fd)
    return _usage(path)


def _remove(path: Path) -> bool:
    """True if the file was there."""
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    return True


class FileDriver:
    def __init__(self, backend: BackendSettings, data_dir: Path) -> None:
        self._backend = backend
        self.directory = data_dir / "volumes" / backend.name
        self._volumes: dict[str, _FileUsage] | None = None

    @property
    def info(self) -> DriverInfo:
        return _INFO

    def path(self, volume_id: str) -> Path:
        if not _VOLUME_ID.match(volume_id):
            raise DriverError(f"invalid volume id {volume_id!r}")
        return self.directory / f"{_PREFIX}{volume_id}"

    def _table(self) -> dict[str, _FileUsage]:
        if self._volumes is None:
            raise DriverNotInitialized("file")
        return self._volumes

    async def do_setup(self) -> None:
        try:
            self._volumes = await asyncio.to_thread(_scan, self.directory)
        except OSError as error:
            raise DriverError(f"cannot use {self.directory}: {error}") from error

    async def create_volume(self, volume_id: str, size_gb: int) -> None:
        table = self._table()
        path = self.path(volume_id)
        attributes: dict[str, AttributeValue] = {
            "volume.id": volume_id,
            "volume.size_gb": size_gb,
            "file.path": str(path),
        }
        with tracer().start_as_current_span("volume.driver.file.create", attributes=attributes):
            try:
                usage = await asyncio.to_thread(_create_sparse, path, size_gb * GIB)
            except OSError as error:
                raise DriverError(f"cannot create {path}: {error}") from error
            table[volume_id] = usage

    async def delete_volume(self, volume_id: str) -> None:
        table = self._table()
        path = self.path(volume_id)
        attributes = {"volume.id": volume_id, "file.path": str(path)}
        with tracer().start_as_current_span(
            "volume.driver.file.delete", attributes=attributes
        ) as span:
            try:
                existed = await asyncio.to_thread(_remove, path)
            except OSError as error:
                raise DriverError(f"cannot delete {path}: {error}") from error
            span.set_attribute("volume.already_gone", not existed)
            table.pop(volume_id, None)

    async def list_volumes(self) -> list[str]:
        return sorted(self._table())

    async def get_capacity(self) -> CapacityStats:
        volumes = self._table().values()
        total = float(self._backend.total_capacity_gb)
        allocated = float(sum(v.size_gb for v in volumes))
        used_gb = sum(v.used_bytes for v in volumes) / GIB
        return CapacityStats(
            total_capacity_gb=total,
            free_capacity_gb=round(max(total - used_gb, 0.0), 2),
            allocated_capacity_gb=allocated,
            provisioned_capacity_gb=allocated,
            thin_provisioning_support=True,
            thick_provisioning_support=False,
            max_over_subscription_ratio=self._backend.max_over_subscription_ratio,
            reserved_percentage=self._backend.reserved_percentage,
            total_volumes=len(volumes),
        )

    async def close(self) -> None:
        self._volumes = None
