"""Renders Envoy's configuration for the REST gateway from ``deploy/envoy/envoy.yaml.tmpl``.

The template holds the listener, the Lua filter (``deploy/envoy/cinder_rest.lua``), the gRPC-JSON
transcoder and the api cluster (health-checked, balanced); this module fills in addresses (every
api replica), paths, request size limits (``GatewaySettings``), the routes with their retry
policies and, when an OTLP endpoint is given, Envoy's OpenTelemetry tracer and the cluster it
exports to.

What the gateway knows about the public API comes from the descriptor set
(``build/cindermesh.pb``), never from lists kept here (see :func:`read_public_api`): the
services the transcoder serves, each RPC's declared REST answer (route metadata the Lua
filter reads) and its HTTP methods (which say whether a retry after it may have run is safe:
:func:`retry_conditions`). Errors Envoy makes get Cinder's shape from ``local_reply_config``,
rendered from ``cindermesh/gateway_faults.py``.
"""

from __future__ import annotations

import json
from pathlib import Path
from string import Template
from urllib.parse import urlsplit

from cindermesh.build_protos import DESCRIPTOR_SET, REPO_ROOT
from cindermesh.gateway_api import PublicApi, RpcMethods, read_public_api
from cindermesh.gateway_faults import local_reply_mappers, render_lua_unshaped
from cindermesh.settings import Settings, replicas_share_host

__all__ = [
    "GATEWAY_SERVICE_NAME",
    "LUA_FILTER",
    "TEMPLATE",
    "otlp_address",
    "render_envoy_config",
    "render_lua_filter",
    "retry_conditions",
    "write_envoy_config",
]

ENVOY_DIR = REPO_ROOT / "deploy" / "envoy"
TEMPLATE = ENVOY_DIR / "envoy.yaml.tmpl"
LUA_FILTER = ENVOY_DIR / "cinder_rest.lua"
GATEWAY_SERVICE_NAME = "cindermesh-gateway"
_OTLP_CLUSTER = "otlp_collector"
_HTTP_OPTIONS = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
#: Failures where the request never reached an api: safe to send elsewhere for any RPC.
NEVER_REACHED = ("connect-failure", "refused-stream")
#: Failures after which the request may have run: safe to retry only an idempotent RPC.
MAY_HAVE_RUN = ("unavailable", "reset")
#: RPCs that are not reads but answer a retry as the first try (the same request id).
IDEMPOTENT_WRITES = frozenset({"/cindermesh.api.v1.VolumeService/CreateVolume"})
#: Retries per request, each on a replica not tried yet for it while there is one.
NUM_RETRIES = 2


def otlp_address(endpoint: str) -> tuple[str, int]:
    """``host:port`` or an ``OTEL_EXPORTER_OTLP_ENDPOINT`` URL (``http://host:4317``)."""
    parts = urlsplit(endpoint if "://" in endpoint else f"//{endpoint}")
    if not parts.hostname:
        raise ValueError(f"no host in OTLP endpoint {endpoint!r}")
    return parts.hostname, parts.port or 4317


def _tracing(service_name: str) -> str:
    tracing = {
        "provider": {
            "name": "envoy.tracers.opentelemetry",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.config.trace.v3.OpenTelemetryConfig",
                "grpc_service": {
                    "envoy_grpc": {"cluster_name": _OTLP_CLUSTER},
                    "timeout": "1s",
                },
                "service_name": service_name,
            },
        },
        "custom_tags": [
            {
                "tag": "openstack.request_id",
                "request_header": {"name": "x-openstack-request-id", "default_value": ""},
            }
        ],
    }
    return "tracing: " + json.dumps(tracing)


def _otlp_cluster(host: str, port: int) -> str:
    address = {"socket_address": {"address": host, "port_value": port}}
    cluster = {
        "name": _OTLP_CLUSTER,
        "type": "STRICT_DNS" if not host.replace(".", "").isdigit() else "STATIC",
        "connect_timeout": "1s",
        "typed_extension_protocol_options": {
            _HTTP_OPTIONS: {
                "@type": f"type.googleapis.com/{_HTTP_OPTIONS}",
                "explicit_http_config": {"http2_protocol_options": {}},
            }
        },
        "load_assignment": {
            "cluster_name": _OTLP_CLUSTER,
            "endpoints": [{"lb_endpoints": [{"endpoint": {"address": address}}]}],
        },
    }
    return "- " + json.dumps(cluster)


_UNSHAPED_LINE = "local UNSHAPED = {} -- @generated-unshaped"


def render_lua_filter() -> str:
    """``deploy/envoy/cinder_rest.lua`` with its generated line filled in."""
    source = LUA_FILTER.read_text()
    if source.count(_UNSHAPED_LINE) != 1:
        raise ValueError(f"{LUA_FILTER} must hold the line {_UNSHAPED_LINE!r} exactly once")
    return source.replace(_UNSHAPED_LINE, render_lua_unshaped())


def retry_conditions(rpc: RpcMethods) -> tuple[str, ...]:
    """Envoy's ``retry_on`` for ``rpc``: a read (bound to GET only) or an idempotent write may
    be retried after it may have run; anything else only when it never reached an api (the
    template's comment says why)."""
    if rpc.methods == ("GET",) or rpc.grpc_path in IDEMPOTENT_WRITES:
        return (*NEVER_REACHED, *MAY_HAVE_RUN)
    return NEVER_REACHED


def _retry_policy(conditions: tuple[str, ...]) -> dict[str, object]:
    predicate = "envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate"
    return {
        "retry_on": ",".join(conditions),
        "num_retries": NUM_RETRIES,
        "retry_host_predicate": [
            {
                "name": "envoy.retry_host_predicates.previous_hosts",
                "typed_config": {"@type": f"type.googleapis.com/{predicate}"},
            }
        ],
        "host_selection_retry_max_attempts": 3,
    }


def _routes(api: PublicApi) -> str:
    """The route list: one route per RPC with a REST binding (its gRPC path, which the
    transcoder sets, with its retry policy, and the status and no-body flag of a declared REST
    answer as the Lua filter's route metadata), then one prefix route for any other path."""
    answers = {answer.grpc_path: answer for answer in api.answers}
    routes: list[dict[str, object]] = []
    for rpc in api.rpcs:
        route: dict[str, object] = {
            "match": {"path": rpc.grpc_path},
            "route": _target(retry_conditions(rpc)),
        }
        if (answer := answers.get(rpc.grpc_path)) is not None:
            lua: dict[str, object] = {"status": str(answer.status)}
            if answer.no_body:
                lua["no_body"] = True
            route["metadata"] = {"filter_metadata": {"envoy.filters.http.lua": lua}}
        routes.append(route)
    routes.append({"match": {"prefix": "/"}, "route": _target(NEVER_REACHED)})
    return json.dumps(routes)


def _target(conditions: tuple[str, ...]) -> dict[str, object]:
    return {"cluster": "api", "timeout": "60s", "retry_policy": _retry_policy(conditions)}


def _api_endpoints(settings: Settings) -> str:
    """The api cluster's endpoints: every replica (a DNS name stands for all those behind it,
    each of its addresses an endpoint: ``_api_cluster_type``)."""
    endpoints = []
    for address in settings.api.addresses:
        host, _, port = address.rpartition(":")
        socket_address = {"address": host, "port_value": int(port)}
        endpoints.append({"endpoint": {"address": {"socket_address": socket_address}}})
    return json.dumps(endpoints)


def _api_cluster_type(settings: Settings) -> str:
    """``STATIC`` for replicas on one machine's IP address, else ``STRICT_DNS``: Envoy resolves
    the name (a headless Service, a compose alias) and balances over every address it has."""
    return "STATIC" if replicas_share_host(settings.api.host) else "STRICT_DNS"


def render_envoy_config(
    settings: Settings,
    otlp_endpoint: str | None = None,
    descriptor: Path = DESCRIPTOR_SET,
) -> str:
    """The YAML text; tracing is on when ``otlp_endpoint`` (``host:port`` or URL) is given."""
    if not descriptor.is_file():
        raise FileNotFoundError(
            f"{descriptor} is missing: run `python -m cindermesh.build_protos` first"
        )
    tracing = otlp_cluster = "# tracing off: no OTLP endpoint"
    if otlp_endpoint:
        host, port = otlp_address(otlp_endpoint)
        tracing = _tracing(GATEWAY_SERVICE_NAME)
        otlp_cluster = _otlp_cluster(host, port)
    api = read_public_api(descriptor)
    return Template(TEMPLATE.read_text()).substitute(
        gateway_host=settings.gateway.host,
        gateway_port=settings.gateway.port,
        admin_port=settings.gateway.admin_port,
        max_request_headers_kb=settings.gateway.max_request_headers_kb,
        max_request_headers_count=settings.gateway.max_request_headers_count,
        max_request_body_size=settings.gateway.max_request_body_size,
        max_response_body_size=settings.gateway.max_response_body_size,
        api_endpoints=_api_endpoints(settings),
        api_cluster_type=_api_cluster_type(settings),
        lua_source=json.dumps(render_lua_filter()),
        descriptor_path=json.dumps(str(descriptor.resolve())),
        services=json.dumps(list(api.services)),
        routes=_routes(api),
        local_reply_mappers=local_reply_mappers(),
        tracing=tracing,
        otlp_cluster=otlp_cluster,
    )


def write_envoy_config(settings: Settings, otlp_endpoint: str | None = None) -> Path:
    """Writes ``<data_dir>/envoy.yaml`` and returns its path."""
    path = settings.data_dir / "envoy.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_envoy_config(settings, otlp_endpoint))
    return path
