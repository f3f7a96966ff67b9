"""Log lines that carry the request id, trace id and span id."""

from __future__ import annotations

import logging

from opentelemetry import trace

from cindermesh.telemetry.request_id import current_request_id

__all__ = ["setup_logging"]

_FORMAT = (
    "%(asctime)s %(levelname)s %(service)s %(name)s "
    "[%(request_id)s trace=%(trace_id)s span=%(span_id)s] %(message)s"
)


class _ContextFilter(logging.Filter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self._service = service

    def filter(self, record: logging.LogRecord) -> bool:
        context = trace.get_current_span().get_span_context()
        record.service = self._service
        record.request_id = current_request_id() or "-"
        record.trace_id = f"{context.trace_id:032x}" if context.is_valid else "-"
        record.span_id = f"{context.span_id:016x}" if context.is_valid else "-"
        return True


def setup_logging(service: str, level: int = logging.INFO) -> None:
    handler = logging.StreamHandler()
    handler.addFilter(_ContextFilter(service))
    handler.setFormatter(logging.Formatter(_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
