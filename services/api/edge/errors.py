"""The api's edge: domain errors to gRPC status, HTTP status and Cinder's fault key, in one table.

Every error leaves as a ``google.rpc.Status`` (``grpc-status-details-bin``) whose one detail is a
``cindermesh.api.v1.CinderFault``: gRPC clients read it with the standard rich-error helpers
(``grpc_status.rpc_status.from_call``), and Envoy's transcoder (``convert_grpc_status``) prints it
as JSON, from which the gateway's Lua filter renders Cinder's body and status without any table
of its own.
"""

from __future__ import annotations

from dataclasses import dataclass

import grpc
from google.protobuf import any_pb2
from google.rpc import status_pb2
from grpc_status import rpc_status

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
from cindermesh_pb.api.v1 import fault_pb2

__all__ = [
    "MAX_FAULT_BYTES",
    "MAX_MESSAGE_CHARS",
    "STATUS_MESSAGE_BYTES",
    "ErrorMapping",
    "fault_status",
    "map_error",
    "shorten",
    "shorten_utf8",
]


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
#: travel in the gRPC trailers and in log lines, so a longer message keeps its start and its end
#: (where jsonschema names the rule broken) around a " ... ". Long enough for Cinder's
#: printable-description message (its pattern alone is 980 characters).
MAX_MESSAGE_CHARS = 4096
#: The most UTF-8 bytes of the message in the fault detail, and of ``Status.message`` (also
#: ``grpc-message``, up to 3 bytes a byte once percent-encoded). Both travel in the trailers,
#: which a gRPC client with default settings refuses past 8 KiB (grpc's soft metadata limit):
#: together about 7 KiB at most, so that no message becomes a transport error (nor a 5xx).
MAX_FAULT_BYTES = 4096
STATUS_MESSAGE_BYTES = 256


def shorten(message: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    if len(message) <= limit:
        return message
    keep = (limit - 5) // 2
    return f"{message[:keep]} ... {message[-keep:]}"


def shorten_utf8(message: str, limit: int) -> str:
    """``message`` in at most ``limit`` UTF-8 bytes: its start and end around a " ... "."""
    data = message.encode()
    if len(data) <= limit:
        return message
    keep = (limit - 5) // 2
    head = data[:keep].decode(errors="ignore")
    tail = data[-keep:].decode(errors="ignore")
    return f"{head} ... {tail}"


def fault_status(mapping: ErrorMapping, message: str) -> grpc.Status:
    """The gRPC status of an error: code, short message and the typed ``CinderFault`` detail
    (Cinder's fault key and REST body; no key: a REST answer without a body)."""
    short = shorten(message)
    body = fault_pb2.CinderFaultBody(
        code=mapping.http_status, message=shorten_utf8(short, MAX_FAULT_BYTES)
    )
    if mapping.http_status == 413:
        body.retryAfter = "0"
    detail = any_pb2.Any()
    detail.Pack(fault_pb2.CinderFault(fault_key=mapping.fault_key, body=body))
    status = status_pb2.Status(
        code=mapping.grpc_code.value[0],
        message=shorten_utf8(short, STATUS_MESSAGE_BYTES),
        details=[detail],
    )
    result: grpc.Status = rpc_status.to_status(status)
    return result
