"""Flows: an ordered list of steps, each with its documented undo.

``run_flow`` runs the steps in order, each in a span named ``<flow>.<step>``. If a step fails,
the undo of that step and of every step before it runs, newest first (as taskflow reverts),
each in a ``<flow>.<step>.revert`` span, and the error is raised again. An undo must therefore
cope with its step having done only part of its work. The flow's state is one typed object
(``C``), passed to every step: what a step produces is a field of it, visible to the reader and
to the type checker.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from opentelemetry.trace import Status, StatusCode

from cindermesh.telemetry.tracing import tracer

__all__ = ["Step", "run_flow"]

C = TypeVar("C")

log = logging.getLogger(__name__)


async def _nothing(_: object) -> None:
    return None


@dataclass(frozen=True)
class Step(Generic[C]):
    name: str
    execute: Callable[[C], Awaitable[None]]
    #: The undo; the default does nothing (for steps with no side effect).
    revert: Callable[[C], Awaitable[None]] = _nothing


async def run_flow(flow: str, steps: Sequence[Step[C]], state: C) -> None:
    started: list[Step[C]] = []
    for step in steps:
        started.append(step)
        with tracer().start_as_current_span(f"{flow}.{step.name}", record_exception=True) as span:
            try:
                await step.execute(state)
                continue
            except BaseException as error:
                span.set_status(Status(StatusCode.ERROR, str(error)))
                failure = error
        log.warning("%s.%s failed: %s; reverting", flow, step.name, failure)
        for done in reversed(started):
            with tracer().start_as_current_span(f"{flow}.{done.name}.revert"):
                try:
                    await done.revert(state)
                except Exception:
                    log.exception("revert of %s.%s failed", flow, done.name)
        raise failure
