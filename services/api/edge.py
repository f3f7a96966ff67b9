"""The api's gRPC edge: from call metadata to a RequestContext, and from results or domain
errors to gRPC status (errors carry a typed ``CinderFault`` detail, see ``errors.py``).

Response metadata (sent as initial metadata, so Envoy turns it into HTTP headers):
``x-openstack-request-id``, ``openstack-api-version``, ``vary``, and what the work adds (``etag``).
The REST status of a success is declared in the contract (the ``rest_status`` and
``rest_no_body`` method options), read by the gateway: the api sends no hints.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any, NoReturn, TypeVar

import grpc
from sqlalchemy.exc import DBAPIError

from cindermesh.errors import (
    BackendUnavailable,
    CindermeshError,
    InvalidInput,
    VersionNotSupported,
)
from cindermesh.settings import Settings
from cindermesh.shielding import run_to_completion
from cindermesh.telemetry.request_id import REQUEST_ID_HEADER, current_request_id
from services.api.auth import Caller, authenticate, check_url_project
from services.api.clients import UNAVAILABLE_MESSAGE
from services.api.errors import INTERNAL_MESSAGE, fault_status, map_error
from services.api.microversion import parse_microversion
from services.api.request_context import RequestContext

__all__ = ["Edge", "rpc"]

T = TypeVar("T")
Req = TypeVar("Req")
Resp = TypeVar("Resp")
Context = grpc.aio.ServicerContext[Any, Any]

log = logging.getLogger(__name__)

VERSION_HEADER = "openstack-api-version"
#: The caller of an anonymous call (``Edge.handle(..., anonymous=True)``).
ANONYMOUS = Caller(user_id="", project_id="", is_admin=False)
BASE_URL_HEADER = "x-cindermesh-base-url"


class Edge:
    def __init__(self, settings: Settings) -> None:
        self._admin_users = settings.api.admin_users
        gateway = settings.gateway
        self._default_base_url = f"http://{gateway.host}:{gateway.port}"

    async def handle(
        self,
        context: Context,
        url_project_id: str,
        work: Callable[[RequestContext], Awaitable[T]],
        anonymous: bool = False,
    ) -> T:
        """``anonymous``: served without a token (version discovery); any token is ignored."""
        metadata = {k: v for k, v in context.invocation_metadata() or () if isinstance(v, str)}
        version_echo: str | None = None
        try:
            caller = (
                ANONYMOUS
                if anonymous
                else authenticate(metadata.get("x-auth-token"), self._admin_users)
            )
            requested = metadata.get(VERSION_HEADER)
            try:
                version = parse_microversion(requested)
            except VersionNotSupported:
                version_echo = (requested or "").partition(" ")[2].strip()
                raise
            version_echo = str(version)
            check_url_project(caller, url_project_id)
            ctx = RequestContext(
                caller=caller,
                version=version,
                base_url=metadata.get(BASE_URL_HEADER, self._default_base_url),
                project_in_url=bool(url_project_id),
                original_path=metadata.get("x-envoy-original-path", ""),
                if_match=metadata.get("if-match"),
            )
            # A client that hangs up stops waiting; the work (and its transaction) ends anyway.
            result = await run_to_completion(work(ctx))
        except CindermeshError as error:
            await _abort(context, error, error.message, version_echo)
        except DBAPIError as error:
            # The database is unreachable or locked past the busy timeout: Cinder's 503.
            log.warning("database unavailable: %s", error.orig)
            unavailable = BackendUnavailable(UNAVAILABLE_MESSAGE)
            await _abort(context, unavailable, unavailable.message, version_echo)
        except Exception as error:
            log.exception("unexpected error")
            await _abort(context, error, INTERNAL_MESSAGE, version_echo)
        await context.send_initial_metadata(_common_headers(version_echo) + ctx.response_headers)
        return result


def rpc(
    *,
    anonymous: bool = False,
    project_field: str = "project_id",
) -> Callable[
    [Callable[[Any, Req, RequestContext], Awaitable[Resp]]],
    Callable[[Any, Req, Context], Awaitable[Resp]],
]:
    """One way to write an RPC: the servicer method (of a servicer with an ``_edge``) takes the
    request and the RequestContext and returns its view; the edge authenticates, reads the
    microversion, checks the URL's project (the request's ``project_field``; none when
    ``anonymous``: served without a token), sends the response headers and maps every error to
    its gRPC status with the typed fault. (The REST status is the RPC's ``rest_status`` option.)"""

    def wrap(
        method: Callable[[Any, Req, RequestContext], Awaitable[Resp]],
    ) -> Callable[[Any, Req, Context], Awaitable[Resp]]:
        @functools.wraps(method)
        async def handler(servicer: Any, request: Req, context: Context) -> Resp:
            edge: Edge = servicer._edge
            return await edge.handle(
                context,
                "" if anonymous else str(getattr(request, project_field)),
                functools.partial(method, servicer, request),
                anonymous=anonymous,
            )

        return handler

    return wrap


def _common_headers(version: str | None) -> list[tuple[str, str]]:
    headers = [(REQUEST_ID_HEADER, current_request_id())]
    if version is not None:
        headers += [(VERSION_HEADER, f"volume {version}"), ("vary", "OpenStack-API-Version")]
    return headers


async def _abort(context: Context, error: Exception, message: str, version: str | None) -> NoReturn:
    mapping = map_error(error)
    if isinstance(error, InvalidInput) and version is None:
        version = None  # a malformed version string: Cinder sends no version header
    await context.send_initial_metadata(_common_headers(version))
    status = fault_status(mapping, message)
    await context.abort(status.code, status.details, status.trailing_metadata)
