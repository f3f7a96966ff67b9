"""The api's gRPC edge: one decorator (:func:`rpc`) puts every public RPC through the same steps.

1. The caller from ``X-Auth-Token`` (the configured ``Authenticator``: noauth or Keystone; a
   401 carries its ``WWW-Authenticate``), then the microversion from ``OpenStack-API-Version``.
2. A request the gateway could not make valid protobuf of (``request_decoding.Undecodable``:
   a string that is not UTF-8) is refused with Cinder's error for where the bad text was; the
   URL's project is checked against the token's, and the query may name only the request's
   fields (Cinder's "Invalid filters" otherwise). Then the RPC's policy rule (``policy=``,
   from ``services.api.policy``'s table) for the caller's project: Cinder's 403 otherwise.
3. The servicer method: its domain call and its view, given the request and a
   :class:`RequestContext`; a client that hangs up does not cancel it (``run_to_completion``).
4. Response metadata (Envoy turns it into HTTP headers): ``x-openstack-request-id``,
   ``openstack-api-version``, ``vary`` and the RPC's declared ``headers`` (e.g. ``etag``).
5. Any error becomes its gRPC status with the typed ``CinderFault`` detail (``errors.py``).

The REST status of a success is declared in the contract (the ``rest_status`` and
``rest_no_body`` method options) and read by the gateway: the api sends no hints.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, NoReturn, TypeVar
from urllib.parse import parse_qsl, urlsplit

import grpc
from google.protobuf import struct_pb2
from sqlalchemy.exc import DBAPIError

from cindermesh.errors import (
    BackendUnavailable,
    CindermeshError,
    InvalidInput,
    NotAuthenticated,
    VersionNotSupported,
)
from cindermesh.json_keys import json_key
from cindermesh.settings import Settings
from cindermesh.shielding import run_to_completion
from cindermesh.telemetry.request_id import REQUEST_ID_HEADER, current_request_id
from services.api.clients import UNAVAILABLE_MESSAGE
from services.api.edge.auth import Authenticator, Caller, NoAuth, check_url_project
from services.api.edge.errors import INTERNAL_MESSAGE, fault_status, map_error
from services.api.edge.microversion import Microversion, parse_microversion
from services.api.edge.request_context import RequestContext
from services.api.edge.request_decoding import Undecodable
from services.api.policy import Enforcer, authorize, check_rule_name
from services.api.schema import additional_properties

__all__ = ["RPC_POLICIES", "Edge", "ResponseHeaders", "rpc"]

Req = TypeVar("Req")
Resp = TypeVar("Resp")
Context = grpc.aio.ServicerContext[Any, Any]
#: The response headers an RPC declares, from its context and its answer.
ResponseHeaders = Callable[[RequestContext, Any], Sequence[tuple[str, str]]]

log = logging.getLogger(__name__)

VERSION_HEADER = "openstack-api-version"
BASE_URL_HEADER = "x-cindermesh-base-url"
#: The top-level keys of the request's JSON body, as a JSON array (set by the gateway).
BODY_KEYS_HEADER = "x-cindermesh-body-keys"
#: The caller of an anonymous RPC (version discovery).
ANONYMOUS = Caller(user_id="", project_id="", roles=frozenset())
#: Each RPC's policy rules, by ``Servicer.Method``: the edge's (``policy=``) and those the
#: domain code authorizes (``domain_policy=``); none where Cinder checks none.
RPC_POLICIES: dict[str, tuple[str | None, tuple[str, ...]]] = {}


class Edge:
    """What every RPC's edge needs from the configuration."""

    def __init__(self, settings: Settings, authenticator: Authenticator | None = None) -> None:
        self._auth = authenticator or NoAuth(settings.api.admin_users)
        gateway = settings.gateway
        self._default_base_url = f"http://{gateway.host}:{gateway.port}"
        #: Cinder's policy table with ``[policy]``'s overrides (a bad override fails here).
        self.policy = Enforcer(settings.policy.overrides())

    async def caller(self, metadata: dict[str, str], anonymous: bool) -> Caller:
        """The token's caller; anonymous RPCs ignore any token."""
        if anonymous:
            return ANONYMOUS
        return await self._auth.caller(metadata.get("x-auth-token"))

    def error_headers(self, error: CindermeshError) -> Sequence[tuple[str, str]]:
        """The authenticator's challenge (``WWW-Authenticate``) on a 401."""
        return self._auth.challenge if isinstance(error, NotAuthenticated) else ()

    def request_context(
        self, metadata: dict[str, str], caller: Caller, version: Microversion, url_project: str
    ) -> RequestContext:
        check_url_project(caller, url_project)
        return RequestContext(
            caller=caller,
            version=version,
            base_url=metadata.get(BASE_URL_HEADER, self._default_base_url),
            project_in_url=bool(url_project),
            original_path=metadata.get("x-envoy-original-path", ""),
            if_match=metadata.get("if-match"),
            policy=self.policy,
        )


def rpc(
    *,
    anonymous: bool = False,
    project_field: str = "project_id",
    headers: ResponseHeaders | None = None,
    policy: str | None = None,
    domain_policy: str | tuple[str, ...] = (),
) -> Callable[
    [Callable[[Any, Req, RequestContext], Awaitable[Resp]]],
    Callable[[Any, Req, Context], Awaitable[Resp]],
]:
    """One way to write an RPC. The servicer method (of a servicer with an ``_edge``) takes the
    request and the RequestContext and returns its view. ``project_field``: the request field
    holding the URL's project (none when ``anonymous``: served without a token); ``headers``:
    the response headers the RPC adds, from its context and answer; ``policy``: the name of
    Cinder's rule for the call, authorized for the caller's project before the method runs
    (None only where Cinder checks none); ``domain_policy``: instead, the rule(s) the domain
    code authorizes itself, where Cinder checks them (after the body's validation or the
    resource's look-up)."""
    in_domain = (domain_policy,) if isinstance(domain_policy, str) else domain_policy
    for name in (policy, *in_domain) if policy is not None else in_domain:
        check_rule_name(name)

    def wrap(
        method: Callable[[Any, Req, RequestContext], Awaitable[Resp]],
    ) -> Callable[[Any, Req, Context], Awaitable[Resp]]:
        RPC_POLICIES[method.__qualname__] = (policy, in_domain)

        @functools.wraps(method)
        async def handler(servicer: Any, request: Req, context: Context) -> Resp:
            edge: Edge = servicer._edge
            metadata = {k: v for k, v in context.invocation_metadata() or () if isinstance(v, str)}
            echo: str | None = None
            try:
                caller = await edge.caller(metadata, anonymous)
                requested = metadata.get(VERSION_HEADER)
                try:
                    version = parse_microversion(requested)
                except VersionNotSupported:
                    echo = (requested or "").partition(" ")[2].strip()
                    raise
                echo = str(version)
                if isinstance(request, Undecodable):
                    raise request.error()
                url_project = "" if anonymous else str(getattr(request, project_field))
                ctx = edge.request_context(metadata, caller, version, url_project)
                _refuse_unknown_query(request, ctx.original_path)
                _refuse_unknown_body_keys(request, metadata.get(BODY_KEYS_HEADER), ctx)
                if policy is not None:
                    authorize(ctx, policy)
                # A client that hangs up stops waiting; the work (and its transaction) ends.
                result = await run_to_completion(method(servicer, request, ctx))
                added = tuple(headers(ctx, result)) if headers is not None else ()
            except CindermeshError as error:
                await _abort(context, error, error.message, echo, edge.error_headers(error))
            except DBAPIError as error:
                # The database is unreachable or locked past the busy timeout: Cinder's 503.
                log.warning("database unavailable: %s", error.orig)
                unavailable = BackendUnavailable(UNAVAILABLE_MESSAGE)
                await _abort(context, unavailable, unavailable.message, echo)
            except Exception as error:
                log.exception("unexpected error")
                await _abort(context, error, INTERNAL_MESSAGE, echo)
            await context.send_initial_metadata((*_common_headers(echo), *added))
            return result

        return handler

    return wrap


def _refuse_unknown_query(request: Any, original_path: str) -> None:
    """Cinder's 400 for query parameters the RPC does not read (the transcoder ignores them)."""
    query = urlsplit(original_path).query
    if not query:
        return
    fields = request.DESCRIPTOR.fields
    known = {f.name for f in fields} | {f.json_name for f in fields}
    names = (name.partition(".")[0] for name, _ in parse_qsl(query, keep_blank_values=True))
    unknown = sorted({name for name in names if name not in known})
    if unknown:
        raise InvalidInput(f"Invalid filters {','.join(unknown)} are found in query options.")


def _refuse_unknown_body_keys(request: Any, told: str | None, ctx: RequestContext) -> None:
    """Cinder's 400 for a body the RPC cannot take all of (the transcoder drops the keys no
    field takes; the gateway tells them, ``x-cindermesh-body-keys``): an action's body names
    one action (Cinder's "Malformed request body"); another body has no key beyond the
    request's fields (``additionalProperties: false``), unless the RPC takes the whole body
    as one Struct (``body: "body"``: its parser sees every key)."""
    if told is None:
        return
    try:
        keys = json.loads(told)
    except ValueError:
        return
    if not isinstance(keys, list):
        return
    # An action's path, as the gateway routes it: ``.../action/<the body's first key>``.
    if urlsplit(ctx.original_path).path.rpartition("/")[0].endswith("/action"):
        if len(keys) > 1:
            raise InvalidInput("Malformed request body")
        return
    fields = request.DESCRIPTOR.fields_by_name
    if "body" in fields and fields["body"].message_type is struct_pb2.Struct.DESCRIPTOR:
        return
    known = {json_key(f) for f in fields.values()} | set(fields)
    extra = [str(key) for key in keys if key not in known]
    if extra:
        raise InvalidInput(additional_properties(extra))


def _common_headers(version: str | None) -> list[tuple[str, str]]:
    """The request id, and the microversion echo (none for a malformed version, as Cinder)."""
    headers = [(REQUEST_ID_HEADER, current_request_id())]
    if version is not None:
        headers += [(VERSION_HEADER, f"volume {version}"), ("vary", "OpenStack-API-Version")]
    return headers


async def _abort(
    context: Context,
    error: Exception,
    message: str,
    version: str | None,
    extra: Sequence[tuple[str, str]] = (),
) -> NoReturn:
    await context.send_initial_metadata((*_common_headers(version), *extra))
    status = fault_status(map_error(error), message)
    await context.abort(status.code, status.details, status.trailing_metadata)
