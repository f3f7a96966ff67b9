"""``cindermesh trace <request-id>``: one request's spans as an indented tree.

Spans are read from the JSON-lines files in ``<data_dir>/traces/`` (the per-service files and the
OTLP sink's). The request id picks the traces (any span whose ``openstack.request_id`` matches);
every span of those traces is shown, children under their parent in start order.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

from cindermesh.telemetry.request_id import REQUEST_ID_ATTRIBUTE
from cindermesh.telemetry.span_records import AttributeValue, SpanRecord, read_span_records

__all__ = ["format_trace_tree", "spans_for_request", "trace_tree_lines"]

#: Attributes not worth a line: Envoy's bookkeeping and what the header already says.
_HIDDEN_ATTRIBUTES = frozenset(
    {
        REQUEST_ID_ATTRIBUTE,
        "component",
        "node_id",
        "zone",
        "guid:x-request-id",
        "request_size",
        "response_size",
        "http.protocol",
        "user_agent",
        "downstream_cluster",
        "peer.address",
        "upstream_address",
        "upstream_cluster.name",
        "response_flags",
        "rpc.system",
    }
)
_MAX_VALUE = 60


def spans_for_request(request_id: str, spans: Iterable[SpanRecord]) -> list[SpanRecord]:
    """Every span of the traces that carry ``request_id``, deduplicated, by start time."""
    all_spans = list(spans)
    trace_ids = {
        s.trace_id for s in all_spans if s.attributes.get(REQUEST_ID_ATTRIBUTE) == request_id
    }
    unique = {(s.trace_id, s.span_id): s for s in all_spans if s.trace_id in trace_ids}
    return sorted(unique.values(), key=lambda s: (s.start_ns, s.end_ns))


def _value(value: AttributeValue) -> str:
    text = ",".join(value) if isinstance(value, list) else str(value)
    return text if len(text) <= _MAX_VALUE else text[: _MAX_VALUE - 3] + "..."


def _line(span: SpanRecord, depth: int) -> str:
    duration_ms = max(span.end_ns - span.start_ns, 0) / 1e6
    attributes = " ".join(
        f"{key}={_value(value)}"
        for key, value in sorted(span.attributes.items())
        if key not in _HIDDEN_ATTRIBUTES and value != ""
    )
    status = " ERROR" if span.status == "ERROR" else ""
    head = f"{'  ' * depth}{span.service or '?'} {span.name} {duration_ms:.2f} ms{status}"
    return f"{head}  {attributes}" if attributes else head


def trace_tree_lines(spans: list[SpanRecord]) -> Iterator[str]:
    """Indented lines, roots first (a span whose parent was not recorded is a root)."""
    ids = {(s.trace_id, s.span_id) for s in spans}
    children: dict[tuple[str, str], list[SpanRecord]] = {}
    roots: list[SpanRecord] = []
    for span in spans:
        parent = (span.trace_id, span.parent_span_id or "")
        if span.parent_span_id and parent in ids:
            children.setdefault(parent, []).append(span)
        else:
            roots.append(span)

    def walk(span: SpanRecord, depth: int) -> Iterator[str]:
        yield _line(span, depth)
        for child in children.get((span.trace_id, span.span_id), []):
            yield from walk(child, depth + 1)

    for root in roots:
        yield from walk(root, 0)


def format_trace_tree(request_id: str, traces_dir: Path) -> str | None:
    """The printable tree, or None when no span carries the request id."""
    spans = spans_for_request(request_id, read_span_records(traces_dir))
    if not spans:
        return None
    start = min(s.start_ns for s in spans)
    end = max(s.end_ns for s in spans)
    trace_ids = sorted({s.trace_id for s in spans})
    header = (
        f"request {request_id}: trace {', '.join(trace_ids)}, {len(spans)} spans, "
        f"{(end - start) / 1e6:.2f} ms"
    )
    return "\n".join([header, *trace_tree_lines(spans)])
