"""Running one gRPC service process: interceptors, health, reflection, graceful drain.

A service stops on SIGTERM (or SIGINT) in this order, within its grace period
(``[work] drain_timeout``):

1. health ``NOT_SERVING`` for good (Envoy's health checks and the other services' clients stop
   sending to it);
2. the server stops taking RPCs (new connections are refused, new streams on open ones too, so
   that the caller can retry them elsewhere) and the service's :attr:`Drain.at_once` runs: it
   ends what never ends by itself (streams that watch), so that
3. the RPCs in flight can finish;
4. then :attr:`Drain.after_rpcs` lets the work those RPCs started finish until the grace period
   is over, and closes what the service holds. Work still running then is cancelled where it
   stands: accepted work is in the database (``cindermesh.db.work``), and recovery on another
   replica, or on this one's restart, takes it over.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import grpc
from grpc_health.v1 import health
from grpc_reflection.v1alpha import reflection

from cindermesh.health import Health
from cindermesh.telemetry.grpc_interceptors import (
    ClientTracingInterceptor,
    ServerTracingInterceptor,
)

__all__ = ["Drain", "create_server", "insecure_channel", "serve_until_signal"]

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
    health_status: Health,
    interceptors: Sequence[grpc.aio.ServerInterceptor] = (),  # type: ignore[type-arg]
    options: Sequence[tuple[str, int]] = (),
) -> grpc.aio.Server:
    """A server with tracing (then ``interceptors``), the servicers ``register`` adds, the
    health service ``health_status`` keeps and reflection; ``options`` are gRPC channel
    arguments."""
    server = grpc.aio.server(
        interceptors=[ServerTracingInterceptor(), *interceptors],
        # A second server on the port fails to bind.
        options=[("grpc.so_reuseport", 0), *options],
    )
    register(server)
    health_status.register(server)
    reflection.enable_server_reflection(
        (*health_status.service_names, health.SERVICE_NAME, reflection.SERVICE_NAME), server
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


@dataclass(frozen=True)
class Drain:
    """What one service does when it stops, besides its server (see the module's steps)."""

    #: Run as the server stops taking RPCs: ends what would keep an RPC in flight for ever.
    at_once: Callable[[], Awaitable[None]] | None = None
    #: Run once the RPCs in flight have finished, with the seconds left of the grace period:
    #: lets the work they started finish in that time, then closes what the service holds.
    after_rpcs: Callable[[float], Awaitable[None]] | None = None


async def serve_until_signal(
    server: grpc.aio.Server,
    address: str,
    health_status: Health,
    drain: Drain = Drain(),
    grace: float = 30.0,
) -> None:
    """Serves on ``address`` until SIGTERM or SIGINT, then drains in ``grace`` seconds.

    The first round of health probes runs before the server answers, so its first health
    answer is already true. Exits (SystemExit) with a message naming ``address`` if it cannot
    be bound.
    """
    _bind(server, address)
    await health_status.start()
    await server.start()
    log.info("serving on %s", address)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    deadline = loop.time() + grace
    log.info("draining: NOT_SERVING, no new RPCs, %g s for the work in flight", grace)
    await health_status.drain()
    stopping = asyncio.create_task(server.stop(grace), name="server-stop")
    await asyncio.sleep(0)  # the server has stopped taking RPCs
    if drain.at_once is not None:
        await drain.at_once()
    await stopping
    if drain.after_rpcs is not None:
        await drain.after_rpcs(max(deadline - loop.time(), 0.0))
    log.info("stopped")
