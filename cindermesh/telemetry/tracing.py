"""Tracer provider set-up for one process.

Spans go over OTLP/gRPC when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set (the standard ``OTEL_*``
variables apply), otherwise to ``<data_dir>/traces/<service>.jsonl``. Every span gets the
request id of the context it starts in.
"""

from __future__ import annotations

import os
from pathlib import Path

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Span, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter

from cindermesh.telemetry.request_id import REQUEST_ID_ATTRIBUTE, current_request_id
from cindermesh.telemetry.span_records import JsonLinesSpanExporter

__all__ = ["RequestIdSpanProcessor", "setup_tracing", "tracer", "traces_dir"]


class RequestIdSpanProcessor(SpanProcessor):
    """Stamps the current request id on every span as it starts."""

    def on_start(self, span: Span, parent_context: otel_context.Context | None = None) -> None:
        if request_id := current_request_id():
            span.set_attribute(REQUEST_ID_ATTRIBUTE, request_id)


def traces_dir(data_dir: Path) -> Path:
    return data_dir / "traces"


def _exporter(service_name: str, data_dir: Path) -> SpanExporter:
    if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or os.environ.get(
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
    ):
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter()
    return JsonLinesSpanExporter(traces_dir(data_dir) / f"{service_name}.jsonl")


def setup_tracing(service_name: str, data_dir: Path) -> TracerProvider:
    """Installs the global tracer provider; call ``shutdown()`` on it to flush at exit."""
    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    provider.add_span_processor(RequestIdSpanProcessor())
    provider.add_span_processor(
        BatchSpanProcessor(_exporter(service_name, data_dir), schedule_delay_millis=500)
    )
    trace.set_tracer_provider(provider)
    return provider


def tracer() -> trace.Tracer:
    return trace.get_tracer("cindermesh")
