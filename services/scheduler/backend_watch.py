"""Every scheduler replica subscribes to every volume manager's capabilities.

The volume managers are found in the services table (``host@backend`` and the address of its
VolumeManager), read at start and every ``discovery_interval`` seconds. Each one gets one
``VolumeManager.WatchCapabilities`` stream, whose reports go into :class:`BackendStates`:

* the manager sends its current report at once, so a replica that starts knows every backend
  within about one read of the table and one round trip;
* a stream that fails or ends is opened again, after ``BACKOFF_INITIAL`` seconds doubling up to
  ``BACKOFF_MAX`` while the manager does not answer (a restarted manager is known again
  within about a second); when a stream that had reported ends, its backend's pools are
  removed at once;
* a row whose address changed gets a new stream to the new address; a row removed closes its
  stream (and so removes its pools);
* a stream that stays open but silent (a hung manager) is aged by :class:`BackendStates`: its
  pools stop being candidates ``service_down_time`` seconds after its last report.

Nothing here raises out of its tasks: failures are logged (at warning once, then at debug
while they last) and retried.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import grpc
from opentelemetry.trace import SpanKind
from sqlmodel import select

from cindermesh.db.engine import Database
from cindermesh.db.models import Service
from cindermesh.grpc_server import insecure_channel
from cindermesh.settings import SchedulerSettings
from cindermesh.telemetry.tracing import tracer
from cindermesh_pb.volume.v1 import volume_manager_pb2, volume_manager_pb2_grpc
from services.scheduler.backend_state import BackendStates
from services.scheduler.messages import backend_report_from_pb

__all__ = ["BACKOFF_INITIAL", "BACKOFF_MAX", "BackendWatcher", "ChannelFactory"]

log = logging.getLogger(__name__)

#: Seconds before opening a stream again after it ended.
BACKOFF_INITIAL = 0.1
#: At most this many seconds between two tries at a manager that does not answer.
BACKOFF_MAX = 1.0

#: Opens a channel to a VolumeManager address.
ChannelFactory = Callable[[str], grpc.aio.Channel]


class _WrongBackend(Exception):
    """The manager at the row's address reports another backend than the row's."""


def _describe(error: BaseException) -> str:
    if isinstance(error, grpc.aio.AioRpcError):
        return f"{error.code().name}: {error.details()}"
    return str(error) or repr(error)


def _opened_span(started: int, host: str, address: str, incarnation: str, sequence: int) -> None:
    """The stream's span: from the call to its first report (no span for a failed try, so
    that a row of a manager that is down makes none every second)."""
    span = tracer().start_span(
        "scheduler.backend_watch.open",
        kind=SpanKind.CLIENT,
        start_time=started,
        attributes={
            "scheduler.backend": host,
            "scheduler.address": address,
            "scheduler.incarnation": incarnation,
            "scheduler.sequence": sequence,
        },
    )
    span.end()


@dataclass
class _Follow:
    address: str
    task: asyncio.Task[None]


class BackendWatcher:
    """One capability stream per row of the services table, kept open."""

    def __init__(
        self,
        states: BackendStates,
        db: Database,
        settings: SchedulerSettings,
        channel: ChannelFactory = insecure_channel,
    ) -> None:
        self._states = states
        self._db = db
        self._settings = settings
        self._channel = channel
        self._follows: dict[str, _Follow] = {}
        self._task: asyncio.Task[None] | None = None

    @property
    def watched(self) -> dict[str, str]:
        """``host@backend`` -> the address its stream goes to."""
        return {host: follow.address for host, follow in self._follows.items()}

    def start(self) -> None:
        """Reads the services table at once, then every ``discovery_interval``."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self._discover_forever(), name="backend-watch"
            )

    async def stop(self) -> None:
        """Closes every stream (their backends' pools are removed)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self._unfollow(list(self._follows))

    async def discover(self) -> None:
        """One read of the services table: streams opened, moved or closed to match it."""
        async with self._db.read() as session:
            rows = dict((await session.exec(select(Service.host, Service.address))).all())
        await self._unfollow(
            [host for host, follow in self._follows.items() if rows.get(host) != follow.address]
        )
        for host, address in rows.items():
            if host not in self._follows and address:
                log.info("watching the capabilities of %s at %s", host, address)
                task = asyncio.get_running_loop().create_task(
                    self._follow(host, address), name=f"capability-stream {host}"
                )
                self._follows[host] = _Follow(address, task)

    async def _discover_forever(self) -> None:
        failing = False
        while True:
            try:
                await self.discover()
                failing = False
            except asyncio.CancelledError:
                raise
            except Exception as error:
                level = logging.DEBUG if failing else logging.WARNING
                log.log(level, "could not read the services table: %s", _describe(error))
                failing = True
            await asyncio.sleep(self._settings.discovery_interval)

    async def _unfollow(self, hosts: Sequence[str]) -> None:
        follows = [self._follows.pop(host) for host in hosts]
        for host in hosts:
            log.info("no longer watching the capabilities of %s", host)
        for follow in follows:
            follow.task.cancel()
        await asyncio.gather(*(f.task for f in follows), return_exceptions=True)

    async def _follow(self, host: str, address: str) -> None:
        """Keeps a stream open to ``host``'s manager at ``address`` until cancelled."""
        channel = self._channel(address)
        stub = volume_manager_pb2_grpc.VolumeManagerStub(channel)
        backoff = BACKOFF_INITIAL
        failing = False
        try:
            while True:
                try:
                    opened = await self._stream_once(stub, host, address)
                    failing = False
                except asyncio.CancelledError:
                    raise
                except Exception as error:
                    opened = False
                    level = logging.DEBUG if failing else logging.WARNING
                    log.log(
                        level,
                        "capability stream of %s (%s) failed: %s",
                        host,
                        address,
                        _describe(error),
                    )
                    failing = True
                backoff = BACKOFF_INITIAL if opened else min(backoff * 2, BACKOFF_MAX)
                await asyncio.sleep(backoff)
        finally:
            await channel.close(None)

    async def _stream_once(
        self, stub: volume_manager_pb2_grpc.VolumeManagerAsyncStub, host: str, address: str
    ) -> bool:
        """Runs one stream until it ends; True if it reported (it ended, not failed, then)."""
        stream = object()  # this stream's identity in the states
        call = stub.WatchCapabilities(volume_manager_pb2.WatchCapabilitiesRequest())
        opened = False
        reason = "closed by the manager"
        started = time.time_ns()
        try:
            async for message in call:
                report = backend_report_from_pb(message, address)
                if report.backend != host:
                    raise _WrongBackend(f"the manager at {address} reports {report.backend}")
                self._states.update(report, stream)
                if not opened:
                    opened = True
                    _opened_span(started, host, address, report.incarnation, report.sequence)
                    log.info(
                        "capability stream of %s open (%s, incarnation %s)",
                        host,
                        address,
                        report.incarnation,
                    )
        except asyncio.CancelledError:
            reason = "no longer watched"
            raise
        except Exception as error:
            reason = _describe(error)
            if not opened:
                raise
        finally:
            call.cancel()
            if opened:
                self._states.remove(host, stream)
                log.info("capability stream of %s ended: %s", host, reason)
        return opened
