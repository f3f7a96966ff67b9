"""One span as a JSON line: the local trace format, written by the file exporter and the
OTLP sink, read by ``cindermesh trace``."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from opentelemetry.proto.trace.v1 import trace_pb2
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

__all__ = ["JsonLinesSpanExporter", "SpanRecord", "read_span_records"]

AttributeValue = str | bool | int | float | list[str]


@dataclass(frozen=True)
class SpanRecord:
    trace_id: str
    span_id: str
    parent_span_id: str | None
    name: str
    service: str
    kind: str
    start_ns: int
    end_ns: int
    status: str
    attributes: dict[str, AttributeValue]

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @staticmethod
    def from_json(line: str) -> SpanRecord:
        return SpanRecord(**json.loads(line))

    @staticmethod
    def from_sdk(span: ReadableSpan) -> SpanRecord:
        context = span.get_span_context()
        assert context is not None
        return SpanRecord(
            trace_id=f"{context.trace_id:032x}",
            span_id=f"{context.span_id:016x}",
            parent_span_id=f"{span.parent.span_id:016x}" if span.parent else None,
            name=span.name,
            service=str(span.resource.attributes.get("service.name", "")),
            kind=span.kind.name,
            start_ns=span.start_time or 0,
            end_ns=span.end_time or 0,
            status=span.status.status_code.name,
            attributes={k: _plain(v) for k, v in (span.attributes or {}).items()},
        )

    @staticmethod
    def from_otlp(span: trace_pb2.Span, service: str) -> SpanRecord:
        kind = trace_pb2.Span.SpanKind.Name(span.kind).removeprefix("SPAN_KIND_")
        status = trace_pb2.Status.StatusCode.Name(span.status.code).removeprefix("STATUS_CODE_")
        return SpanRecord(
            trace_id=span.trace_id.hex(),
            span_id=span.span_id.hex(),
            parent_span_id=span.parent_span_id.hex() or None,
            name=span.name,
            service=service,
            kind=kind,
            start_ns=span.start_time_unix_nano,
            end_ns=span.end_time_unix_nano,
            status=status,
            attributes={kv.key: _otlp_value(kv.value) for kv in span.attributes},
        )


def _plain(value: object) -> AttributeValue:
    if isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, Sequence):
        return [str(v) for v in value]
    return str(value)


def _otlp_value(value: object) -> AttributeValue:
    from opentelemetry.proto.common.v1 import common_pb2

    assert isinstance(value, common_pb2.AnyValue)
    which = value.WhichOneof("value")
    if which == "array_value":
        return [str(_otlp_value(v)) for v in value.array_value.values]
    if which is None:
        return ""
    result = getattr(value, which)
    return result if isinstance(result, str | bool | int | float) else str(result)


class JsonLinesSpanExporter(SpanExporter):
    """Appends finished spans to a JSON-lines file (one file per process)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = path.open("a", encoding="utf-8")

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self._file.write("".join(SpanRecord.from_sdk(s).to_json() + "\n" for s in spans))
        self._file.flush()
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        self._file.close()


def read_span_records(directory: Path) -> Iterator[SpanRecord]:
    for path in sorted(directory.glob("*.jsonl")):
        with path.open(encoding="utf-8") as lines:
            for line in lines:
                if line.strip():
                    yield SpanRecord.from_json(line)
