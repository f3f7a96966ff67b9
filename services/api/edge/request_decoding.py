"""Requests the api cannot parse: a protobuf string that is not UTF-8.

Envoy's transcoder copies path segments and query values into string fields byte for byte
(percent-decoded), and protobuf refuses a string field that is not UTF-8. Without help, gRPC
answers such a call UNKNOWN before any servicer runs (a 500 at the gateway). The
:class:`RequestDecodingInterceptor` gives every public RPC a deserializer that hands such a
request to the servicer as an :class:`Undecodable` instead, and the edge (``edge.rpc``) refuses
it as Cinder would: a bad path segment names no resource (404), anything else is bad input (400).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
from google.api import annotations_pb2
from google.protobuf import descriptor, descriptor_pool, empty_pb2, unknown_fields
from google.protobuf.message import DecodeError

from cindermesh.errors import CindermeshError, InvalidInput, NotFound
from cindermesh.gateway_api import http_bindings

__all__ = ["RequestDecodingInterceptor", "Undecodable", "quiet_header_decoding"]

_PATH_VARIABLE = re.compile(r"\{([^}=]+)")
_LENGTH_DELIMITED = 2
Deserializer = Callable[[bytes], Any]


class Undecodable:
    """A request of ``method`` (``/package.Service/Method``) whose bytes protobuf refused."""

    def __init__(self, method: str, data: bytes) -> None:
        self.method = method
        self.data = data

    def error(self) -> CindermeshError:
        full_name = self.method.strip("/").replace("/", ".")
        method = descriptor_pool.Default().FindMethodByName(full_name)
        rule = method.GetOptions().Extensions[annotations_pb2.http]
        path_fields = {
            name for _, template in http_bindings(rule) for name in _PATH_VARIABLE.findall(template)
        }
        bad = _fields_not_utf8(method.input_type, self.data)
        if any(name.partition(".")[0] in path_fields for name in bad):
            return NotFound("The resource could not be found.")
        shown = bad[0] if bad else "the request"
        return InvalidInput(f"Invalid input received: {shown} is not valid UTF-8.")


def _fields_not_utf8(message: descriptor.Descriptor, data: bytes, prefix: str = "") -> list[str]:
    """Dotted names of the string fields in ``data`` (a ``message``) that are not UTF-8."""
    holder = empty_pb2.Empty()
    try:
        holder.ParseFromString(data)  # no fields: every field stays unknown, nothing checked
    except DecodeError:
        return []
    bad: list[str] = []
    fields = unknown_fields.UnknownFieldSet(holder)
    for index in range(len(fields)):
        item = fields[index]
        field = message.fields_by_number.get(item.field_number)
        if field is None or item.wire_type != _LENGTH_DELIMITED:
            continue
        name = f"{prefix}{field.name}"
        if field.type == descriptor.FieldDescriptor.TYPE_STRING:
            try:
                bytes(item.data).decode("utf-8")
            except UnicodeDecodeError:
                bad.append(name)
        elif field.message_type is not None:
            bad += _fields_not_utf8(field.message_type, bytes(item.data), f"{name}.")
    return bad


class RequestDecodingInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[type-arg]
    """Gives each unary RPC a deserializer that answers :class:`Undecodable` instead of
    failing the call."""

    def __init__(self) -> None:
        self._handlers: dict[str, grpc.RpcMethodHandler[Any, Any]] = {}

    async def intercept_service(
        self,
        continuation: Callable[
            [grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any]]
        ],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any]:
        method = handler_call_details.method
        cached = self._handlers.get(method)
        if cached is not None:
            return cached
        handler = await continuation(handler_call_details)
        parse = getattr(handler, "request_deserializer", None)
        if handler is None or handler.unary_unary is None or parse is None:
            return handler
        lenient = handler._replace(request_deserializer=_lenient(method, parse))  # type: ignore[attr-defined]
        self._handlers[method] = lenient
        return lenient  # type: ignore[no-any-return]


def _lenient(method: str, parse: Deserializer) -> Deserializer:
    def deserialize(data: bytes) -> Any:
        try:
            return parse(data)
        except DecodeError:
            return Undecodable(method, data)

    return deserialize


class _InvalidHeaderEncoding(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Invalid encoding on")


def quiet_header_decoding() -> None:
    """gRPC logs a traceback for each header value that is not UTF-8 (and hands it over as
    Latin-1); the edge refuses such values itself (a token is printable ASCII, a microversion
    has a format), so those records are dropped."""
    logging.getLogger("grpc._cython.cygrpc").addFilter(_InvalidHeaderEncoding())
