"""The api's edge under failure: a database that fails answers Cinder's 503, and a client that
hangs up does not interrupt the work it started."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
import pytest
from google.rpc import status_pb2
from sqlalchemy.exc import OperationalError

from cindermesh.settings import Settings
from cindermesh_pb.api.v1 import fault_pb2
from services.api.edge.request_context import RequestContext
from services.api.edge.rpc import Edge, rpc


class Aborted(Exception):
    pass


class Request:
    project_id = "p1"


class Servicer:
    """One RPC whose work is ``work``."""

    def __init__(self, work: Callable[[RequestContext], Awaitable[Any]]) -> None:
        self._edge = Edge(Settings())
        self._work = work

    @rpc()
    async def Call(self, request: Request, ctx: RequestContext) -> Any:
        return await self._work(ctx)


class FakeContext:
    """The few ServicerContext methods the edge uses."""

    def __init__(self) -> None:
        self.headers: list[tuple[str, str]] = []
        self.code: grpc.StatusCode | None = None
        self.details = ""
        self.trailers: dict[str, Any] = {}

    def invocation_metadata(self) -> list[tuple[str, str]]:
        return [("x-auth-token", "u1:p1")]

    async def send_initial_metadata(self, headers: list[tuple[str, str]]) -> None:
        self.headers = list(headers)

    async def abort(
        self, code: grpc.StatusCode, details: str, trailing_metadata: tuple[Any, ...] = ()
    ) -> None:
        self.code, self.details = code, details
        self.trailers = dict(trailing_metadata)
        raise Aborted


async def test_a_locked_database_answers_503() -> None:
    async def work(_: RequestContext) -> None:
        raise OperationalError("BEGIN IMMEDIATE", {}, sqlite3.OperationalError("locked"))

    context = FakeContext()
    with pytest.raises(Aborted):
        await Servicer(work).Call(Request(), context)  # type: ignore[arg-type]
    assert context.code == grpc.StatusCode.UNAVAILABLE
    assert context.details == (
        "The server is currently unavailable. Please try again at a later time."
    )
    status = status_pb2.Status.FromString(context.trailers["grpc-status-details-bin"])
    fault = fault_pb2.CinderFault()
    assert status.details[0].Unpack(fault)
    assert (fault.fault_key, fault.body.code) == ("serviceUnavailable", 503)
    assert "locked" not in str(context.headers) + str(status)


async def test_work_goes_on_when_the_caller_is_cancelled() -> None:
    started, finished = asyncio.Event(), asyncio.Event()
    release = asyncio.Event()

    async def work(_: RequestContext) -> Any:
        started.set()
        await release.wait()
        finished.set()

    handler: asyncio.Task[Any] = asyncio.create_task(
        Servicer(work).Call(Request(), FakeContext())  # type: ignore[arg-type]
    )
    await started.wait()
    handler.cancel()
    with pytest.raises(asyncio.CancelledError):
        await handler
    release.set()
    await asyncio.wait_for(finished.wait(), 2)
