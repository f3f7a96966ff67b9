"""A volume's data between two volume managers, with no shared filesystem: the source manager
serves its image as a server stream (``VolumeManager.ReadVolumeData``, chunks of
``CHUNK_SIZE``), the destination manager consumes it and writes each chunk through its own
driver. Chunks that are all zeros are not sent: the destination image is created empty
(sparse file, thin RBD image), so they are there already.

Both ends read and write through the drivers, whose I/O runs off the event loop; one chunk at
a time is in flight at each end (gRPC's flow control holds the source back when the
destination is slower), so a copy holds a few MiB whatever the volume's size.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator
from dataclasses import dataclass

import grpc
from sqlmodel import select

from cindermesh.db.engine import Database
from cindermesh.db.models import Service
from cindermesh.grpc_server import insecure_channel
from cindermesh_pb.volume.v1 import volume_manager_pb2, volume_manager_pb2_grpc
from services.volume.drivers.base import BlockStorageDriver
from services.volume.errors import DriverError

__all__ = [
    "CHUNK_SIZE",
    "MAX_CHUNK_SIZE",
    "CopyResult",
    "SourceUnreachable",
    "copy_from",
    "delete_source",
    "manager_address",
    "read_chunks",
]

CHUNK_SIZE = 1024 * 1024
#: Under gRPC's 4 MiB message limit.
MAX_CHUNK_SIZE = 2 * 1024 * 1024
_ZEROS = bytes(MAX_CHUNK_SIZE)

log = logging.getLogger(__name__)


class SourceUnreachable(DriverError):
    """The source manager is not registered, or failed or stopped serving the data."""


@dataclass(frozen=True)
class CopyResult:
    size_bytes: int
    #: Bytes sent and written (the chunks that were not all zeros).
    written_bytes: int
    chunks: int


async def read_chunks(
    driver: BlockStorageDriver, volume_id: str, size_bytes: int, chunk_size: int = CHUNK_SIZE
) -> AsyncGenerator[volume_manager_pb2.VolumeDataChunk, None]:
    """The source side: the image's chunks that are not all zeros; a first chunk without data
    when there is none (so that the destination learns the size)."""
    chunk_size = min(chunk_size or CHUNK_SIZE, MAX_CHUNK_SIZE)
    sent = False
    offset = 0
    while offset < size_bytes:
        data = await driver.read_volume_data(
            volume_id, offset, min(chunk_size, size_bytes - offset)
        )
        if not data:
            break
        if data != _ZEROS[: len(data)]:
            yield volume_manager_pb2.VolumeDataChunk(
                offset=offset, data=data, size_bytes=size_bytes
            )
            sent = True
        offset += len(data)
    if not sent:
        yield volume_manager_pb2.VolumeDataChunk(offset=0, size_bytes=size_bytes)


async def manager_address(db: Database, host: str) -> str | None:
    """The registered address of the volume manager of ``host`` (host@backend#pool)."""
    backend = host.partition("#")[0]
    async with db.read() as session:
        service = (await session.exec(select(Service).where(Service.host == backend))).first()
    return service.address if service is not None else None


async def copy_from(
    address: str, driver: BlockStorageDriver, volume_id: str, size_bytes: int
) -> CopyResult:
    """The destination side: reads the volume's data from the source manager at ``address``
    and writes it into this backend's image (created beforehand, ``size_bytes`` long)."""
    written = chunks = 0
    channel = insecure_channel(address)
    try:
        stub = volume_manager_pb2_grpc.VolumeManagerStub(channel)
        stream = stub.ReadVolumeData(
            volume_manager_pb2.ReadVolumeDataRequest(volume_id=volume_id, chunk_size=CHUNK_SIZE)
        )
        try:
            async for chunk in stream:
                if chunk.size_bytes != size_bytes:
                    raise DriverError(
                        f"source of volume {volume_id} is {chunk.size_bytes} bytes, "
                        f"not {size_bytes}"
                    )
                if chunk.offset + len(chunk.data) > size_bytes:
                    raise DriverError(f"chunk past the end of volume {volume_id}")
                if chunk.data:
                    await driver.write_volume_data(volume_id, chunk.offset, chunk.data)
                    written += len(chunk.data)
                chunks += 1
        except grpc.aio.AioRpcError as error:
            raise SourceUnreachable(
                f"reading volume {volume_id} from {address} failed: "
                f"{error.code().name} {error.details()}"
            ) from error
        finally:
            stream.cancel()
    finally:
        await channel.close(grace=None)
    if chunks == 0:
        raise SourceUnreachable(f"{address} sent no data of volume {volume_id}")
    return CopyResult(size_bytes=size_bytes, written_bytes=written, chunks=chunks)


async def delete_source(address: str, volume_id: str, timeout: float = 30.0) -> None:
    """Asks the source manager to remove its image of a volume migrated away."""
    channel = insecure_channel(address)
    try:
        stub = volume_manager_pb2_grpc.VolumeManagerStub(channel)
        await stub.DeleteMigratedSource(
            volume_manager_pb2.DeleteMigratedSourceRequest(volume_id=volume_id), timeout=timeout
        )
    finally:
        await channel.close(grace=None)
