"""The api's edge: domain errors to gRPC status, HTTP status and Cinder's fault body, in one table.

The HTTP side reaches the client through Envoy: the api sends the status and the complete Cinder
error body as the ``x-cindermesh-http-status`` and ``x-cindermesh-fault`` initial-metadata
headers, and the gateway's Lua filter puts them on the REST response.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import grpc

from cindermesh.errors import (
    BackendUnavailable,
    CindermeshError,
    Conflict,
    Forbidden,
    InvalidInput,
    NotAuthenticated,
    NotFound,
    PreconditionFailed,
    QuotaExceeded,
    VersionNotSupported,
)

__all__ = ["MAX_MESSAGE_CHARS", "ErrorMapping", "fault_body", "map_error", "shorten"]


@dataclass(frozen=True)
class ErrorMapping:
    grpc_code: grpc.StatusCode
    http_status: int
    fault_key: str


_TABLE: tuple[tuple[type[CindermeshError], ErrorMapping], ...] = (
    (InvalidInput, ErrorMapping(grpc.StatusCode.INVALID_ARGUMENT, 400, "badRequest")),
    (NotAuthenticated, ErrorMapping(grpc.StatusCode.UNAUTHENTICATED, 401, "unauthorized")),
    (Forbidden, ErrorMapping(grpc.StatusCode.PERMISSION_DENIED, 403, "forbidden")),
    (NotFound, ErrorMapping(grpc.StatusCode.NOT_FOUND, 404, "itemNotFound")),
    (Conflict, ErrorMapping(grpc.StatusCode.ALREADY_EXISTS, 409, "conflictingRequest")),
    # Cinder answers a failed If-Match with an empty body: no fault key.
    (PreconditionFailed, ErrorMapping(grpc.StatusCode.FAILED_PRECONDITION, 412, "")),
    (QuotaExceeded, ErrorMapping(grpc.StatusCode.RESOURCE_EXHAUSTED, 413, "overLimit")),
    # Cinder answers an unsupported microversion with 406 and the generic fault key.
    (VersionNotSupported, ErrorMapping(grpc.StatusCode.INVALID_ARGUMENT, 406, "computeFault")),
    (BackendUnavailable, ErrorMapping(grpc.StatusCode.UNAVAILABLE, 503, "serviceUnavailable")),
)

_INTERNAL = ErrorMapping(grpc.StatusCode.INTERNAL, 500, "computeFault")
INTERNAL_MESSAGE = (
    "The server has either erred or is incapable of performing the requested operation."
)


def map_error(error: Exception) -> ErrorMapping:
    for kind, mapping in _TABLE:
        if isinstance(error, kind):
            return mapping
    return _INTERNAL


#: The longest message sent. Cinder's schema messages show the whole offending value; ours
#: travel in headers (the fault body, grpc-message: at most 12 bytes a character, and Envoy
#: takes no header field over 64 KiB) and in log lines, so a longer message keeps its start
#: and its end (where jsonschema names the rule broken) around a " ... ". Long enough for
#: Cinder's printable-description message (its pattern alone is 980 characters).
MAX_MESSAGE_CHARS = 4096


def shorten(message: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    if len(message) <= limit:
        return message
    keep = (limit - 5) // 2
    return f"{message[:keep]} ... {message[-keep:]}"


def fault_body(mapping: ErrorMapping, message: str) -> str:
    """Cinder's error body, ASCII-only so that it can travel as a header value (at most
    ``12 * MAX_MESSAGE_CHARS`` bytes and a few more: ``\\uXXXX`` pairs for the worst char)."""
    fault: dict[str, object] = {"code": mapping.http_status, "message": shorten(message)}
    if mapping.http_status == 413:
        fault["retryAfter"] = "0"
    return json.dumps({mapping.fault_key: fault})
