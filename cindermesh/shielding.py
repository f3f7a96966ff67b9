"""Work that a caller's cancellation must not interrupt.

A gRPC handler is cancelled when its client hangs up (or Envoy restarts). Cancelling it in the
middle of database work would interrupt a commit or a rollback and could leave the process's
connection inside a transaction holding SQLite's write lock. So handlers run their work with
``run_to_completion``: the work goes on in its own task until it ends, whatever happens to the
caller, and the caller's cancellation only stops the caller from waiting for it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import Any, TypeVar

__all__ = ["run_to_completion"]

T = TypeVar("T")

log = logging.getLogger(__name__)

#: Strong references to work whose caller went away, until it ends.
_orphans: set[asyncio.Future[Any]] = set()


def _report(task: asyncio.Future[Any]) -> None:
    _orphans.discard(task)
    if not task.cancelled() and (error := task.exception()) is not None:
        log.info("work finished after its caller left: %r", error)


async def run_to_completion(work: Awaitable[T]) -> T:
    """Runs ``work`` in a task (with the caller's context: trace and request id) and waits for
    it; if the caller is cancelled, the task still runs to its end."""
    task = asyncio.ensure_future(work)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        if not task.done():
            _orphans.add(task)
            task.add_done_callback(_report)
        raise
