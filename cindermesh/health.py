"""A service's ``grpc.health.v1`` status, kept true to the dependencies it needs.

One :class:`Health` per process: it owns the health servicer, probes each
:class:`Dependency` before the server starts and every ``interval`` seconds after, and answers
``SERVING`` (for the whole server, ``""``, and for each of its service names) only while every
probe passes; a probe that raises or takes longer than ``timeout`` is a dependency down, and the
change is logged once, with the reason. :meth:`Health.drain` is the first step of a graceful
stop: ``NOT_SERVING`` for good, so that Envoy and the other services' clients stop sending.

What each service needs (its ``main`` wires it): the api and the scheduler the database, a
volume manager the database and its driver's storage (:func:`database_dependency`,
:func:`storage_dependency`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from sqlalchemy import text

from cindermesh.db.engine import Database

__all__ = [
    "PROBE_INTERVAL",
    "PROBE_TIMEOUT",
    "Dependency",
    "DependencyDown",
    "Health",
    "database_dependency",
    "storage_dependency",
]

#: Seconds between two rounds of probes.
PROBE_INTERVAL = 1.0
#: Seconds one probe may take before its dependency counts as down.
PROBE_TIMEOUT = 2.0

_SERVING = health_pb2.HealthCheckResponse.SERVING
_NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


class DependencyDown(Exception):
    """A probe's answer: the dependency answered, and said it is down."""


@dataclass(frozen=True)
class Dependency:
    """Something a service cannot serve without, and how to tell that it is there."""

    #: What it is, for the log (``database``, ``storage``).
    name: str
    #: Returns when the dependency is up; raises (anything) when it is down.
    probe: Callable[[], Awaitable[None]]


def database_dependency(db: Database) -> Dependency:
    """The database answers a ``SELECT 1`` (on a read session: never SQLite's write lock)."""

    async def probe() -> None:
        async with db.read() as session:
            await session.execute(text("SELECT 1"))

    return Dependency("database", probe)


def storage_dependency(is_up: Callable[[], Awaitable[bool]]) -> Dependency:
    """A driver's storage, by a call that says whether it is up (the capacity report's
    ``backend_state``, for RBD a ``ceph df`` of the cluster)."""

    async def probe() -> None:
        if not await is_up():
            raise DependencyDown("the driver reports its storage down")

    return Dependency("storage", probe)


class Health:
    """The health servicer of one server and the probes that set it."""

    def __init__(
        self,
        service_names: Sequence[str],
        dependencies: Sequence[Dependency] = (),
        interval: float = PROBE_INTERVAL,
        timeout: float = PROBE_TIMEOUT,
    ) -> None:
        self.servicer = health.aio.HealthServicer()  # type: ignore[attr-defined]
        self._names = (*service_names, "")
        self._dependencies = tuple(dependencies)
        self._interval = interval
        self._timeout = timeout
        self._log = logging.getLogger(__name__)
        self._down: dict[str, str] = {}
        self._serving: bool | None = None
        self._draining = False
        self._task: asyncio.Task[None] | None = None

    @property
    def service_names(self) -> tuple[str, ...]:
        """The services whose status this keeps (besides the whole server's, ``""``)."""
        return self._names[:-1]

    @property
    def serving(self) -> bool:
        """Whether the last round of probes passed (and the service is not draining)."""
        return bool(self._serving) and not self._draining

    @property
    def down(self) -> dict[str, str]:
        """The dependencies down at the last round, each with its reason."""
        return dict(self._down)

    def register(self, server: grpc.aio.Server) -> None:
        health_pb2_grpc.add_HealthServicer_to_server(self.servicer, server)

    async def check(self) -> bool:
        """One round of probes (all at once); sets the status and returns whether serving."""
        results = await asyncio.gather(*(self._probe(d) for d in self._dependencies))
        down = {name: reason for name, reason in results if reason is not None}
        for name, reason in down.items():
            if self._down.get(name) is None:
                self._log.warning("health: %s down (%s): NOT_SERVING", name, reason)
        for name in self._down.keys() - down.keys():
            self._log.info("health: %s back", name)
        self._down = down
        await self._set(not down)
        return not down

    async def _probe(self, dependency: Dependency) -> tuple[str, str | None]:
        try:
            await asyncio.wait_for(dependency.probe(), self._timeout)
        except TimeoutError:
            return dependency.name, f"no answer within {self._timeout:g} s"
        except Exception as error:
            return dependency.name, str(error) or type(error).__name__
        return dependency.name, None

    async def _set(self, serving: bool) -> None:
        if self._draining or serving == self._serving:
            return
        if self._serving is not None and serving:
            self._log.info("health: SERVING")
        self._serving = serving
        for name in self._names:
            await self.servicer.set(name, _SERVING if serving else _NOT_SERVING)

    async def start(self) -> None:
        """Probes once (so the first answer is already true), then every ``interval``."""
        await self.check()
        self._task = asyncio.create_task(self._run(), name="health-probes")

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self.check()
            except Exception as error:  # a bug in a probe must not end the probing
                self._log.error("health probes failed: %r", error)

    async def stop(self) -> None:
        """Ends the probing (idempotent; the status stays as it is)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def drain(self) -> None:
        """``NOT_SERVING`` for good: the service is stopping."""
        await self.stop()
        self._draining = True
        await self.servicer.enter_graceful_shutdown()
