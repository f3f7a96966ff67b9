"""A local OTLP/gRPC trace receiver: every span it receives becomes a JSON line.

``cindermesh up`` runs it when no ``OTEL_EXPORTER_OTLP_ENDPOINT`` is configured, so that the
services' and Envoy's spans all land in ``<data_dir>/traces/otlp-sink.jsonl`` where
``cindermesh trace <request-id>`` finds them.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from pathlib import Path
from typing import IO

import grpc
from grpc_health.v1 import _async as health_aio
from grpc_health.v1 import health_pb2, health_pb2_grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

from cindermesh.telemetry.span_records import SpanRecord

__all__ = ["SINK_FILE_NAME", "OtlpSink", "TraceSinkServicer", "serve_sink"]

log = logging.getLogger(__name__)

SINK_FILE_NAME = "otlp-sink.jsonl"


class TraceSinkServicer(trace_service_pb2_grpc.TraceServiceServicer):
    """Appends each exported span to a JSON-lines file."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file: IO[str] = path.open("a", encoding="utf-8")

    async def Export(
        self,
        request: trace_service_pb2.ExportTraceServiceRequest,
        context: grpc.aio.ServicerContext[
            trace_service_pb2.ExportTraceServiceRequest,
            trace_service_pb2.ExportTraceServiceResponse,
        ],
    ) -> trace_service_pb2.ExportTraceServiceResponse:
        lines: list[str] = []
        for resource_spans in request.resource_spans:
            service = ""
            for attribute in resource_spans.resource.attributes:
                if attribute.key == "service.name":
                    service = attribute.value.string_value
            for scope_spans in resource_spans.scope_spans:
                lines.extend(
                    SpanRecord.from_otlp(span, service).to_json() + "\n"
                    for span in scope_spans.spans
                )
        self._file.write("".join(lines))
        self._file.flush()
        return trace_service_pb2.ExportTraceServiceResponse()

    def close(self) -> None:
        self._file.close()


class OtlpSink:
    """The receiver as a gRPC server on a loopback port (0 picks a free one)."""

    def __init__(self, traces_dir: Path, host: str = "127.0.0.1", port: int = 0) -> None:
        self.path = traces_dir / SINK_FILE_NAME
        self._host = host
        self._port = port
        self._servicer = TraceSinkServicer(self.path)
        self._server: grpc.aio.Server | None = None
        self.port = 0

    @property
    def endpoint(self) -> str:
        """The ``OTEL_EXPORTER_OTLP_ENDPOINT`` value that points at this sink."""
        return f"http://{self._host}:{self.port}"

    async def start(self) -> int:
        server = grpc.aio.server()
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(  # type: ignore[no-untyped-call]
            self._servicer, server
        )
        health_servicer = health_aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
        await health_servicer.set("", health_pb2.HealthCheckResponse.SERVING)
        self.port = server.add_insecure_port(f"{self._host}:{self._port}")
        await server.start()
        self._server = server
        log.info("OTLP trace sink on %s:%d writing %s", self._host, self.port, self.path)
        return self.port

    async def stop(self, grace: float = 1.0) -> None:
        if self._server is not None:
            await self._server.stop(grace)
            self._server = None
        self._servicer.close()


async def serve_sink(traces_dir: Path, host: str, port: int) -> None:
    """Runs a sink until SIGTERM or SIGINT (``cindermesh trace-sink``)."""
    sink = OtlpSink(traces_dir, host, port)
    await sink.start()
    print(f"trace sink listening on {sink.endpoint}, writing {sink.path}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await sink.stop()
