"""The OTLP sink receives spans from a real OTLPSpanExporter."""

from __future__ import annotations

import asyncio
from pathlib import Path

from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from cindermesh.telemetry.sink import OtlpSink
from cindermesh.telemetry.span_records import read_span_records


async def test_sink_writes_received_spans(tmp_path: Path) -> None:
    sink = OtlpSink(tmp_path / "traces")
    await sink.start()
    try:
        provider = TracerProvider(resource=Resource.create({"service.name": "svc-test"}))
        exporter = OTLPSpanExporter(endpoint=sink.endpoint, insecure=True)
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        tracer = provider.get_tracer("test")

        def emit() -> None:
            with tracer.start_as_current_span("parent") as parent:
                parent.set_attribute("openstack.request_id", "req-x")
                with tracer.start_as_current_span("child") as child:
                    child.set_attribute("size", 3)
                    child.set_attribute("hosts", ["a", "b"])
            provider.shutdown()

        await asyncio.to_thread(emit)
    finally:
        await sink.stop()
    records = {r.name: r for r in read_span_records(tmp_path / "traces")}
    assert set(records) == {"parent", "child"}
    assert records["child"].parent_span_id == records["parent"].span_id
    assert records["child"].trace_id == records["parent"].trace_id
    assert records["parent"].service == "svc-test"
    assert records["parent"].attributes["openstack.request_id"] == "req-x"
    assert records["child"].attributes == {"size": 3, "hosts": ["a", "b"]}
    assert records["child"].end_ns >= records["child"].start_ns > 0
