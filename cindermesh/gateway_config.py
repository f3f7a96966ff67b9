"""Renders Envoy's configuration for the REST gateway from ``deploy/envoy/envoy.yaml.tmpl``.

The template holds the listener, the Lua filter (``deploy/envoy/cinder_rest.lua``), the gRPC-JSON
transcoder and the api cluster; this module fills in addresses, paths and request size limits
(``GatewaySettings``) and, when an OTLP endpoint is given, Envoy's OpenTelemetry tracer and the
cluster it exports to.

What the gateway knows about the public API comes from the descriptor set
(``build/cindermesh.pb``), never from lists kept here (see :func:`read_public_api`): the
services the transcoder serves and each RPC's declared REST answer (route metadata the Lua
filter reads). Errors Envoy makes get Cinder's shape from ``local_reply_config``, rendered from
``cindermesh/gateway_faults.py``.
"""

from __future__ import annotations

import json
from pathlib import Path
from string import Template
from urllib.parse import urlsplit

from cindermesh.build_protos import DESCRIPTOR_SET, REPO_ROOT
from cindermesh.gateway_api import PublicApi, read_public_api
from cindermesh.gateway_faults import local_reply_mappers, render_lua_unshaped
from cindermesh.settings import Settings

__all__ = [
    "GATEWAY_SERVICE_NAME",
    "LUA_FILTER",
    "TEMPLATE",
    "otlp_address",
    "render_envoy_config",
    "render_lua_filter",
    "write_envoy_config",
]

ENVOY_DIR = REPO_ROOT / "deploy" / "envoy"
TEMPLATE = ENVOY_DIR / "envoy.yaml.tmpl"
LUA_FILTER = ENVOY_DIR / "cinder_rest.lua"
GATEWAY_SERVICE_NAME = "cindermesh-gateway"
_OTLP_CLUSTER = "otlp_collector"
_HTTP_OPTIONS = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"


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


def _routes(api: PublicApi) -> str:
    """The route list: one route per RPC with a declared REST answer (its gRPC path, which the
    transcoder sets, with the status and no-body flag as the Lua filter's route metadata), then
    one prefix route for every other RPC."""
    target = {"cluster": "api", "timeout": "60s"}
    routes: list[dict[str, object]] = []
    for answer in api.answers:
        lua: dict[str, object] = {"status": str(answer.status)}
        if answer.no_body:
            lua["no_body"] = True
        routes.append(
            {
                "match": {"path": answer.grpc_path},
                "route": target,
                "metadata": {"filter_metadata": {"envoy.filters.http.lua": lua}},
            }
        )
    routes.append({"match": {"prefix": "/"}, "route": target})
    return json.dumps(routes)


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
        api_host=settings.api.host,
        api_port=settings.api.port,
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
