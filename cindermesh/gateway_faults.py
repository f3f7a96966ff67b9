"""Cinder's answers to the errors Envoy makes itself, in one declarative table.

An unknown path or a wrong method (404, as Cinder: Cinder has no 405 for them), a body the
transcoder cannot parse (400), a URL it cannot map (400), a body over the size limit (413), a
gRPC call or a body that is not JSON (415, refused by the Lua filter), headers over the limit
(431), the api unreachable (503) and other 5xx: the api never sees those requests, so no typed
fault exists for them. Each row becomes one of Envoy's ``local_reply_config`` mappers (the first
that matches renders the body), see :func:`local_reply_mappers`; the Lua filter holds no copy.
Errors the api answers carry their own fault key and message (``services/api/edge/errors.py``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

__all__ = [
    "ENVOY_FAULTS",
    "INTERNAL",
    "UNAVAILABLE",
    "EnvoyFault",
    "local_reply_mappers",
    "render_lua_unshaped",
]

#: The transcoder's details for a URL (path or query) it could not map onto the request
#: message, and for a body it could not.
_URL_NOT_MAPPED = "response.code_details.startsWith('early_grpc_json_transcode_failure')"
_BODY_NOT_MAPPED = "response.code_details.startsWith('grpc_json_transcode_failure')"
#: A request without a microversion: Cinder echoes 3.0 on a 400 it makes before routing.
_NO_VERSION = "!('openstack-api-version' in request.headers)"


@dataclass(frozen=True)
class EnvoyFault:
    status: int
    #: Cinder's fault key (``computeFault`` when Cinder has no specific one).
    fault_key: str
    #: Cinder's message.
    message: str
    #: A CEL condition (Envoy's ``request``/``response`` attributes) narrowing the row.
    when: str | None = None
    #: Also ``OpenStack-API-Version: volume 3.0`` when the request named no version.
    echo_version: bool = False
    #: The row applies to every status from ``status`` up (the body shows the real one).
    and_above: bool = False


INTERNAL = EnvoyFault(
    500,
    "computeFault",
    "The server has either erred or is incapable of performing the requested operation.",
    and_above=True,
)
UNAVAILABLE = EnvoyFault(
    503, "serviceUnavailable", "The service is unavailable. Please try again later."
)

ENVOY_FAULTS: tuple[EnvoyFault, ...] = (
    EnvoyFault(400, "badRequest", "Malformed request url", when=_URL_NOT_MAPPED),
    EnvoyFault(
        400, "badRequest", "Malformed request body", when=_BODY_NOT_MAPPED, echo_version=True
    ),
    # A request the HTTP codec refuses (a control character in a header, ...).
    EnvoyFault(
        400,
        "badRequest",
        "The server could not comply with the request since it is either malformed or "
        "otherwise incorrect.",
    ),
    EnvoyFault(404, "itemNotFound", "The resource could not be found."),
    EnvoyFault(413, "overLimit", "Request is too large."),
    EnvoyFault(415, "badMediaType", "Unsupported Content-Type"),
    EnvoyFault(431, "computeFault", "Request header fields are too large."),
    UNAVAILABLE,
    INTERNAL,
)

_REQUEST_ID = {
    "header": {"key": "x-openstack-request-id", "value": "req-%UNIQUE_ID%"},
    "append_action": "ADD_IF_ABSENT",
}
_VERSION_HEADERS = [
    {"header": {"key": "openstack-api-version", "value": "volume 3.0"}},
    {"header": {"key": "vary", "value": "OpenStack-API-Version"}},
]


def _filter(fault: EnvoyFault, extra: str | None) -> dict[str, object]:
    status: dict[str, object] = {
        "status_code_filter": {
            "comparison": {
                "op": "GE" if fault.and_above else "EQ",
                "value": {"default_value": fault.status, "runtime_key": f"cm_{fault.status}"},
            }
        }
    }
    conditions = [c for c in (fault.when, extra) if c is not None]
    if not conditions:
        return status
    cel = {
        "extension_filter": {
            "name": "envoy.access_loggers.extension_filters.cel",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.access_loggers.filters.cel.v3."
                "ExpressionFilter",
                "expression": " && ".join(conditions),
            },
        }
    }
    return {"and_filter": {"filters": [status, cel]}}


def _mapper(fault: EnvoyFault, extra: str | None, headers: list[object]) -> dict[str, object]:
    return {
        "filter": _filter(fault, extra),
        "headers_to_add": [_REQUEST_ID, *headers],
        "body_format_override": {
            "json_format": {fault.fault_key: {"code": "%RESPONSE_CODE%", "message": fault.message}},
            "content_type": "application/json",
        },
    }


def local_reply_mappers() -> str:
    """Envoy's ``local_reply_config.mappers``, as one line of JSON."""
    mappers = []
    for fault in ENVOY_FAULTS:
        if fault.echo_version:
            mappers.append(_mapper(fault, _NO_VERSION, list(_VERSION_HEADERS)))
        mappers.append(_mapper(fault, None, []))
    return json.dumps(mappers)


def render_lua_unshaped() -> str:
    """``UNSHAPED``: the body, by status, of an api error that carries no typed fault (a failure
    of gRPC itself, never the api's code); any other status shows as the 500."""
    bodies = {
        fault.status: json.dumps(
            {fault.fault_key: {"code": fault.status, "message": fault.message}},
            separators=(",", ":"),
        )
        for fault in (UNAVAILABLE, INTERNAL)
    }
    entries = ", ".join(f"[{status}] = {_lua_string(body)}" for status, body in bodies.items())
    return f"local UNSHAPED = {{ {entries} }} -- generated by cindermesh/gateway_faults.py"


def _lua_string(text: str) -> str:
    """A double-quoted Lua string literal of ASCII text."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
