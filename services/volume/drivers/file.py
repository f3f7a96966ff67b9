"""The local-file driver: one sparse file per volume, the embedded default.

``<data_dir>/volumes/<backend>/volume-<id>`` is truncated to the volume's size and never
written, so it takes (almost) no blocks. Capacity comes from the configuration: total is
``total_capacity_gb``, allocated is the sum of the volume sizes (counted once at set-up, then
kept up to date by create and delete), free is total minus the blocks really used, and the pool
is thin provisioned. All file I/O runs in a worker thread.

Snapshots are sparse copies ``snapshot-<id>`` beside the volumes (only the data extents are
copied, holes stay holes); clones of volumes and of snapshots are sparse copies too, so the
clone policy does not apply. A connection is the file's local path.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from opentelemetry.util.types import AttributeValue

from cindermesh.settings import BackendSettings
from cindermesh.telemetry.tracing import tracer
from services.volume.drivers.base import (
    CapacityStats,
    ClonePolicy,
    ConnectionInfo,
    DriverInfo,
    LocalConnectionData,
    SnapshotRef,
    SourceVolumeRef,
    snapshot_name,
)
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


def _sparse_copy(source: Path, target: Path, size_bytes: int) -> _FileUsage:
    """Copies ``source``'s data extents into a new ``target`` of at least ``size_bytes``
    (written to a temporary name and renamed, so ``target`` is never half there)."""
    partial = target.with_name(f".partial-{target.name}")
    with open(source, "rb") as src, open(partial, "wb") as dst:
        end = os.fstat(src.fileno()).st_size
        offset = 0
        while offset < end:
            try:
                offset = os.lseek(src.fileno(), offset, os.SEEK_DATA)
            except OSError:  # ENXIO: no data after offset
                break
            hole = os.lseek(src.fileno(), offset, os.SEEK_HOLE)
            while offset < hole:
                chunk = os.pread(src.fileno(), min(hole - offset, 1 << 20), offset)
                if not chunk:
                    break
                os.pwrite(dst.fileno(), chunk, offset)
                offset += len(chunk)
        os.ftruncate(dst.fileno(), max(end, size_bytes))
    os.replace(partial, target)
    return _usage(target)


def _grow(path: Path, size_bytes: int) -> _FileUsage:
    if path.stat().st_size > size_bytes:
        raise DriverError(f"cannot shrink {path} to {size_bytes} bytes")
    os.truncate(path, size_bytes)
    return _usage(path)


def _revert(snapshot: Path, volume: Path) -> _FileUsage:
    """The volume's content becomes the snapshot's; the volume keeps its size if larger."""
    return _sparse_copy(snapshot, volume, volume.stat().st_size)


def _remove(path: Path) -> bool:
    """True if the file was there."""
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    return True


def _read_range(path: Path, offset: int, length: int) -> bytes:
    """The bytes at ``offset``; a range that is all hole is zeros without reading it (reading
    holes costs the kernel as much as reading data)."""
    with path.open("rb") as image:
        size = os.fstat(image.fileno()).st_size
        if offset >= size:
            return b""
        try:
            data_at = os.lseek(image.fileno(), offset, os.SEEK_DATA)
        except OSError:  # ENXIO: no data from offset on (or SEEK_DATA not supported)
            data_at = size if _seek_data_supported(image.fileno()) else offset
        if data_at >= offset + length:
            return bytes(min(length, size - offset))
        image.seek(offset)
        return image.read(length)


def _seek_data_supported(fd: int) -> bool:
    try:
        os.lseek(fd, 0, os.SEEK_HOLE)
    except OSError:
        return False
    return True


def _write_range(path: Path, offset: int, data: bytes) -> None:
    with path.open("r+b") as image:
        image.seek(offset)
        image.write(data)


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

    def snapshot_path(self, snapshot: SnapshotRef) -> Path:
        if not _VOLUME_ID.match(snapshot.id):
            raise DriverError(f"invalid snapshot id {snapshot.id!r}")
        return self.directory / snapshot_name(snapshot.id)

    @property
    def clone_policy(self) -> ClonePolicy:
        return ClonePolicy.from_settings(self._backend)

    async def wait_up(self) -> None:
        return None

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

    async def create_snapshot(self, snapshot: SnapshotRef) -> None:
        self._table()
        source, target = self.path(snapshot.volume_id), self.snapshot_path(snapshot)
        attributes: dict[str, AttributeValue] = {
            "volume.id": snapshot.volume_id,
            "snapshot.id": snapshot.id,
            "file.path": str(target),
        }
        with tracer().start_as_current_span(
            "volume.driver.file.create_snapshot", attributes=attributes
        ):
            if target.exists():
                return
            try:
                await asyncio.to_thread(_sparse_copy, source, target, 0)
            except OSError as error:
                raise DriverError(f"cannot snapshot {source}: {error}") from error

    async def delete_snapshot(self, snapshot: SnapshotRef) -> None:
        self._table()
        path = self.snapshot_path(snapshot)
        attributes = {"snapshot.id": snapshot.id, "file.path": str(path)}
        with tracer().start_as_current_span(
            "volume.driver.file.delete_snapshot", attributes=attributes
        ) as span:
            try:
                existed = await asyncio.to_thread(_remove, path)
            except OSError as error:
                raise DriverError(f"cannot delete {path}: {error}") from error
            span.set_attribute("snapshot.already_gone", not existed)

    async def _copy_into(
        self, operation: str, volume_id: str, size_gb: int, source: Path, **more: AttributeValue
    ) -> None:
        table = self._table()
        target = self.path(volume_id)
        attributes: dict[str, AttributeValue] = {
            "volume.id": volume_id,
            "volume.size_gb": size_gb,
            "file.path": str(target),
            "file.source": str(source),
            **more,
        }
        with tracer().start_as_current_span(
            f"volume.driver.file.{operation}", attributes=attributes
        ):
            try:
                usage = await asyncio.to_thread(_sparse_copy, source, target, size_gb * GIB)
            except OSError as error:
                raise DriverError(f"cannot copy {source} to {target}: {error}") from error
            table[volume_id] = usage

    async def create_volume_from_snapshot(
        self, volume_id: str, size_gb: int, snapshot: SnapshotRef
    ) -> None:
        await self._copy_into(
            "create_from_snapshot",
            volume_id,
            size_gb,
            self.snapshot_path(snapshot),
            **{"snapshot.id": snapshot.id},
        )

    async def create_cloned_volume(
        self, volume_id: str, size_gb: int, source: SourceVolumeRef
    ) -> None:
        await self._copy_into(
            "create_cloned", volume_id, size_gb, self.path(source.id), **{"source.id": source.id}
        )

    async def extend_volume(self, volume_id: str, new_size_gb: int) -> None:
        table = self._table()
        path = self.path(volume_id)
        attributes: dict[str, AttributeValue] = {
            "volume.id": volume_id,
            "volume.size_gb": new_size_gb,
            "file.path": str(path),
        }
        with tracer().start_as_current_span("volume.driver.file.extend", attributes=attributes):
            try:
                table[volume_id] = await asyncio.to_thread(_grow, path, new_size_gb * GIB)
            except OSError as error:
                raise DriverError(f"cannot extend {path}: {error}") from error

    async def revert_to_snapshot(self, volume_id: str, snapshot: SnapshotRef) -> None:
        table = self._table()
        path, source = self.path(volume_id), self.snapshot_path(snapshot)
        attributes = {"volume.id": volume_id, "snapshot.id": snapshot.id, "file.path": str(path)}
        with tracer().start_as_current_span("volume.driver.file.revert", attributes=attributes):
            try:
                table[volume_id] = await asyncio.to_thread(_revert, source, path)
            except OSError as error:
                raise DriverError(f"cannot revert {path} to {source}: {error}") from error

    async def initialize_connection(
        self, volume_id: str, connector: Mapping[str, object] | None = None
    ) -> ConnectionInfo:
        path = self.path(volume_id)
        attributes = {"volume.id": volume_id, "file.path": str(path)}
        with tracer().start_as_current_span(
            "volume.driver.file.initialize_connection", attributes=attributes
        ):
            if not await asyncio.to_thread(path.is_file):
                raise DriverError(f"volume {volume_id} has no image at {path}")
            return ConnectionInfo(
                driver_volume_type="local",
                data=LocalConnectionData(device_path=str(path), volume_id=volume_id),
            )

    async def terminate_connection(
        self, volume_id: str, connector: Mapping[str, object] | None = None
    ) -> None:
        return None

    async def read_volume_data(self, volume_id: str, offset: int, length: int) -> bytes:
        self._table()
        path = self.path(volume_id)
        try:
            return await asyncio.to_thread(_read_range, path, offset, length)
        except OSError as error:
            raise DriverError(f"cannot read {path}: {error}") from error

    async def write_volume_data(self, volume_id: str, offset: int, data: bytes) -> None:
        table = self._table()
        path = self.path(volume_id)
        try:
            await asyncio.to_thread(_write_range, path, offset, data)
            table[volume_id] = await asyncio.to_thread(_usage, path)
        except OSError as error:
            raise DriverError(f"cannot write {path}: {error}") from error

    async def list_volumes(self) -> list[str]:
        return sorted(self._table())

    async def get_capacity(self) -> CapacityStats:
        volumes = self._table().values()
        total = float(self._backend.total_capacity_gb)
        allocated = float(sum(v.size_gb for v in volumes))
        thin = self._backend.provisioning == "thin"
        # Thin: what the sparse files hold is used; thick: every GiB of every volume is.
        used_gb = sum(v.used_bytes for v in volumes) / GIB if thin else allocated
        return CapacityStats(
            total_capacity_gb=total,
            free_capacity_gb=round(max(total - used_gb, 0.0), 2),
            allocated_capacity_gb=allocated,
            provisioned_capacity_gb=allocated,
            thin_provisioning_support=thin,
            thick_provisioning_support=not thin,
            max_over_subscription_ratio=self._backend.max_over_subscription_ratio,
            reserved_percentage=self._backend.reserved_percentage,
            total_volumes=len(volumes),
            # A file can be opened by several hosts at once, as an RBD image can.
            extra={"multiattach": "True"},
        )

    async def close(self) -> None:
        self._volumes = None
