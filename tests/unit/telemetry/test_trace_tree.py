"""Printing one request's span tree."""

from __future__ import annotations

from pathlib import Path

from cindermesh.telemetry.span_records import AttributeValue, SpanRecord
from cindermesh.telemetry.trace_tree import format_trace_tree

RID = "req-0b7c3a1e-0f6c-4d1b-9d2a-3b1c5e7f9a01"
TRACE = "ab" * 16


def span(
    span_id: str,
    parent: str | None,
    name: str,
    service: str,
    start_ms: float,
    end_ms: float,
    trace_id: str = TRACE,
    **attributes: AttributeValue,
) -> SpanRecord:
    return SpanRecord(
        trace_id=trace_id,
        span_id=span_id,
        parent_span_id=parent,
        name=name,
        service=service,
        kind="SERVER",
        start_ns=int(start_ms * 1e6),
        end_ns=int(end_ms * 1e6),
        status="UNSET",
        attributes=dict(attributes),
    )


def write(path: Path, spans: list[SpanRecord]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(s.to_json() + "\n" for s in spans))


def test_prints_indented_tree_across_files(tmp_path: Path) -> None:
    traces = tmp_path / "traces"
    gateway = span("0" * 15 + "1", None, "ingress", "cindermesh-gateway", 0, 4.5,
                   **{"openstack.request_id": RID, "http.status_code": "202"})  # fmt: skip
    api = span("0" * 15 + "2", "0" * 15 + "1", "api.create_volume", "cindermesh-api", 0.5, 4,
               **{"openstack.request_id": RID})  # fmt: skip
    step = span("0" * 15 + "3", "0" * 15 + "2", "api.create_volume.QuotaReserve",
                "cindermesh-api", 1, 1.25, **{"volume.size": 1})  # fmt: skip
    other = span("0" * 15 + "9", None, "other", "cindermesh-api", 0, 1, trace_id="cd" * 16,
                 **{"openstack.request_id": "req-other"})  # fmt: skip
    write(traces / "otlp-sink.jsonl", [step, gateway, other])
    write(traces / "cindermesh-api.jsonl", [api, api])  # duplicates are shown once
    text = format_trace_tree(RID, traces)
    assert text is not None
    lines = text.splitlines()
    assert lines[0].startswith(f"request {RID}: trace {TRACE}, 3 spans, 4.50 ms")
    assert lines[1] == "cindermesh-gateway ingress 4.50 ms  http.status_code=202"
    assert lines[2] == "  cindermesh-api api.create_volume 3.50 ms"
    assert lines[3] == "    cindermesh-api api.create_volume.QuotaReserve 0.25 ms  volume.size=1"
    assert "other" not in text


def test_unknown_request_id(tmp_path: Path) -> None:
    assert format_trace_tree(RID, tmp_path) is None
