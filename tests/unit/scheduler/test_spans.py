"""The flow's spans and their attributes (DESIGN §4)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from cindermesh.db.engine import Database

from .conftest import add_volume
from .fakes import A, FakeManagers, make_scheduler, request


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    exporter = InMemorySpanExporter()
    processor = SimpleSpanProcessor(exporter)
    provider.add_span_processor(processor)
    yield exporter
    processor.shutdown()


async def test_flow_spans(db: Database, spans: InMemorySpanExporter) -> None:
    scheduler = make_scheduler(db, FakeManagers())
    await add_volume(db, "v1")
    await scheduler.schedule(request("v1", az="nova"))
    by_name = {span.name: span for span in spans.get_finished_spans()}
    assert {
        "scheduler.create_volume.ExtractSchedulerSpec",
        "scheduler.create_volume.ScheduleCreateVolume",
        "scheduler.filter.AvailabilityZoneFilter",
        "scheduler.filter.CapacityFilter",
        "scheduler.filter.CapabilitiesFilter",
        "scheduler.weigher.CapacityWeigher",
    } <= set(by_name)
    az = by_name["scheduler.filter.AvailabilityZoneFilter"].attributes or {}
    assert (az["scheduler.hosts_in"], az["scheduler.hosts_out"]) == (2, 1)
    weigher = by_name["scheduler.weigher.CapacityWeigher"].attributes or {}
    assert weigher["scheduler.weights"] == (f"{A}=0.0000",)
    placed = by_name["scheduler.create_volume.ScheduleCreateVolume"].attributes or {}
    assert (placed["scheduler.backend"], placed["scheduler.pool"], placed["volume.size"]) == (
        "node1@file-1",
        "pool1",
        10,
    )
