"""The backends an operator disabled or froze (``os-services`` disable/freeze): the scheduler
places nothing on their pools, as Cinder's scheduler ignores disabled services.

The set is read from the services table (one small query: a row per backend) at most every
``max_age`` seconds, by one read at a time however many placements ask meanwhile; in between,
placements use the set as last read, so a disable takes effect within about ``max_age``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from sqlalchemy import or_
from sqlmodel import col, select

from cindermesh.db.engine import Database
from cindermesh.db.models import Service

__all__ = ["DisabledBackends"]

log = logging.getLogger(__name__)


class DisabledBackends:
    """``host@backend`` of the disabled (or frozen) backends, refreshed lazily."""

    def __init__(
        self,
        db: Database,
        max_age: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._db = db
        self._max_age = max_age
        self._clock = clock
        self._hosts: frozenset[str] = frozenset()
        self._read_at: float | None = None
        self._reading: asyncio.Task[None] | None = None

    def known(self) -> frozenset[str]:
        """The set as last read (empty before the first read)."""
        return self._hosts

    async def current(self) -> frozenset[str]:
        """The set, read again first if the last read is older than ``max_age``; a failed
        read raises (the placement waits for the sweep, as on any database failure)."""
        read_at = self._read_at
        if read_at is not None and self._clock() - read_at < self._max_age:
            return self._hosts
        if self._reading is None:
            self._reading = asyncio.get_running_loop().create_task(self._read())
            self._reading.add_done_callback(self._done)
        # Shielded: a cancelled placement does not cancel the read others wait for.
        await asyncio.shield(self._reading)
        return self._hosts

    def _done(self, task: asyncio.Task[None]) -> None:
        if self._reading is task:
            self._reading = None
        if not task.cancelled() and task.exception() is not None:
            log.warning("Could not read the disabled backends: %s", task.exception())

    async def _read(self) -> None:
        started = self._clock()
        query = select(Service.host).where(
            or_(col(Service.disabled).is_(True), col(Service.frozen).is_(True))
        )
        async with self._db.read() as session:
            hosts = frozenset(await session.exec(query))
        if hosts != self._hosts:
            log.info("Disabled backends: %s", sorted(hosts) or "none")
        self._hosts, self._read_at = hosts, started
