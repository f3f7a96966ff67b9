"""gRPC interceptors: W3C trace context and the request id across every hop.

The server side opens a SERVER span per unary call, as a child of the caller's ``traceparent``,
and sets the request id from ``x-openstack-request-id`` (a new one if absent or malformed).
The client side opens a CLIENT span per unary call and sends ``traceparent`` and the request id.
Streaming calls (capability reports) are long-lived and not tied to a request: not traced.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeAlias

import grpc
from opentelemetry import propagate
from opentelemetry.trace import SpanKind, Status, StatusCode

from cindermesh.telemetry.request_id import (
    REQUEST_ID_HEADER,
    new_request_id,
    request_id_var,
    valid_request_id,
)
from cindermesh.telemetry.tracing import tracer

__all__ = ["ClientTracingInterceptor", "ServerTracingInterceptor"]

_UNTRACED_PREFIXES = ("/grpc.health.", "/grpc.reflection.")

UnaryBehavior = Callable[[Any, grpc.aio.ServicerContext[Any, Any]], Awaitable[Any]]
Handler: TypeAlias = "grpc.RpcMethodHandler[Any, Any]"


def _rpc_attributes(method: str) -> dict[str, str]:
    service, _, name = method.lstrip("/").partition("/")
    return {"rpc.system": "grpc", "rpc.service": service, "rpc.method": name}


def _wrap_unary(method: str, behavior: UnaryBehavior) -> UnaryBehavior:
    async def traced(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        metadata = {k: v for k, v in context.invocation_metadata() or () if isinstance(v, str)}
        incoming = metadata.get(REQUEST_ID_HEADER)
        valid = incoming is not None and valid_request_id(incoming)
        request_id_var.set(incoming if incoming and valid else new_request_id())
        parent = propagate.extract(metadata)
        with tracer().start_as_current_span(
            method.lstrip("/"),
            context=parent,
            kind=SpanKind.SERVER,
            attributes=_rpc_attributes(method),
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            try:
                return await behavior(request, context)
            finally:
                code = context.code()
                if code is not None and code != grpc.StatusCode.OK:
                    span.set_attribute("rpc.grpc.status_code", code.value[0])
                    span.set_status(Status(StatusCode.ERROR, str(context.details() or "")))

    return traced


class ServerTracingInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[type-arg]
    async def intercept_service(  # type: ignore[override]
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Handler | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Handler | None:
        handler = await continuation(handler_call_details)
        method: str = handler_call_details.method
        if handler is None or handler.unary_unary is None or method.startswith(_UNTRACED_PREFIXES):
            return handler
        behavior: UnaryBehavior = handler.unary_unary  # type: ignore[assignment]
        return grpc.unary_unary_rpc_method_handler(
            _wrap_unary(method, behavior),
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )


class ClientTracingInterceptor(grpc.aio.UnaryUnaryClientInterceptor):  # type: ignore[type-arg]
    async def intercept_unary_unary(
        self,
        continuation: Callable[[grpc.aio.ClientCallDetails, Any], Awaitable[Any]],
        client_call_details: grpc.aio.ClientCallDetails,
        request: Any,
    ) -> Any:
        method = client_call_details.method
        name = method.decode() if isinstance(method, bytes) else method
        with tracer().start_as_current_span(
            name.lstrip("/"), kind=SpanKind.CLIENT, attributes=_rpc_attributes(name)
        ):
            carrier: dict[str, str] = {}
            propagate.inject(carrier)
            metadata = list(client_call_details.metadata or ())
            metadata.extend(carrier.items())
            if request_id := request_id_var.get():
                metadata.append((REQUEST_ID_HEADER, request_id))
            # aio's ClientCallDetails is a namedtuple at run time (the stubs don't say so).
            details = client_call_details._replace(  # type: ignore[attr-defined]
                metadata=grpc.aio.Metadata(*metadata)
            )
            call = await continuation(details, request)
            await call
            return call
