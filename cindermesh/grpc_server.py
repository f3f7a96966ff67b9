"""Running one gRPC service process: interceptors, health, reflection, graceful stop."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable, Sequence

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from cindermesh.telemetry.grpc_interceptors import (
    ClientTracingInterceptor,
    ServerTracingInterceptor,
)

__all__ = ["create_server", "insecure_channel", "serve_until_signal"]

log = logging.getLogger(__name__)

#: Reconnect within a second of a peer coming back (gRPC's default backoff grows to 120 s).
_CHANNEL_OPTIONS = [
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.enable_retries", 1),
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1000),
]


def create_server(
    register: Callable[[grpc.aio.Server], None],
    service_names: Sequence[str],
    interceptors: Sequence[grpc.aio.ServerInterceptor] = (),  # type: ignore[type-arg]
    options: Sequence[tuple[str, int]] = (),
) -> grpc.aio.Server:
    """A server with tracing (then ``interceptors``), the servicers ``register`` adds, health
    and reflection; ``options`` are gRPC channel arguments."""
    server = grpc.aio.server(
        interceptors=[ServerTracingInterceptor(), *interceptors],
        # A second server on the port fails to bind.
        options=[("grpc.so_reuseport", 0), *options],
    )
    register(server)
    health_servicer = health.aio.HealthServicer()  # type: ignore[attr-defined]
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    for name in (*service_names, ""):
        asyncio.get_running_loop().create_task(
            health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
        )
    reflection.enable_server_reflection(
        (*service_names, health.SERVICE_NAME, reflection.SERVICE_NAME), server
    )
    return server


def insecure_channel(
    address: str, options: Sequence[tuple[str, str | int]] = ()
) -> grpc.aio.Channel:
    """A channel to another cindermesh service, with trace context and request id;
    ``options`` are further gRPC channel arguments (e.g. ``grpc.lb_policy_name``)."""
    return grpc.aio.insecure_channel(
        address,
        interceptors=[ClientTracingInterceptor()],  # type: ignore[list-item]
        options=[*_CHANNEL_OPTIONS, *options],
    )


def _bind(server: grpc.aio.Server, address: str) -> None:
    """Adds the listening port, or exits with an error naming ``address`` if it is taken."""
    try:
        port = server.add_insecure_port(address)
    except RuntimeError as error:
        raise SystemExit(f"cannot listen on {address}: {error}") from error
    if port == 0:
        raise SystemExit(f"cannot listen on {address}: the address is in use or invalid")


async def serve_until_signal(
    server: grpc.aio.Server,
    address: str,
    on_stop: Callable[[], Awaitable[None]] | None = None,
    grace: float = 5.0,
) -> None:
    """Serves on ``address`` until SIGTERM or SIGINT, then stops gracefully.

    Exits (SystemExit) with a message naming ``address`` if it cannot be bound.
    """
    _bind(server, address)
    await server.start()
    log.info("serving on %s", address)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("stopping")
    if on_stop is not None:
        await on_stop()
    await server.stop(grace)
