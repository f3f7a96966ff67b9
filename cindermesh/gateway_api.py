"""What the REST gateway knows about the public API, read from the descriptor set.

``build/cindermesh.pb`` (a ``FileDescriptorSet`` with imports) is the one source:

* the transcoder's ``services``: every service of the package ``cindermesh.api.v1``;
* the REST routes: every ``google.api.http`` pattern of those services, additional bindings
  included, with the HTTP methods bound to it (for the tests that walk every route);
* the REST answers: each RPC's ``(cindermesh.api.v1.rest_status)`` and ``rest_no_body``
  options, which become the metadata of a route on its gRPC path (the transcoder's);
* each RPC's HTTP methods (its retry policy at the gateway follows them).

(Cinder's JSON keys are in the descriptor set itself, as each field's ``json_name``:
``cindermesh/build_protos.py``.)

"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from google.api import annotations_pb2, http_pb2
from google.protobuf import descriptor_pb2

from cindermesh_pb.api.v1 import rest_pb2

__all__ = [
    "PUBLIC_PACKAGE",
    "PublicApi",
    "RestAnswer",
    "RestRoute",
    "RpcMethods",
    "http_bindings",
    "read_public_api",
]

PUBLIC_PACKAGE = "cindermesh.api.v1"
_METHODS = ("get", "put", "post", "delete", "patch")
_LUA_MAGIC = re.compile(r"([\^$()%.\[\]*+\-?])")
_VARIABLE = re.compile(r"\{([^}=]+)(?:=([^}]*))?\}")


@dataclass(frozen=True)
class RestRoute:
    #: The path template as annotated, e.g. ``/v3/{project_id}/volumes/{volume_id}``.
    template: str
    #: The HTTP methods bound to it, upper case and sorted.
    methods: tuple[str, ...]


@dataclass(frozen=True)
class RestAnswer:
    #: The RPC's gRPC path, ``/cindermesh.api.v1.<Service>/<Method>``.
    grpc_path: str
    #: The HTTP status of a success (200 unless declared).
    status: int
    #: Whether a success has no body.
    no_body: bool


@dataclass(frozen=True)
class RpcMethods:
    #: The RPC's gRPC path, ``/cindermesh.api.v1.<Service>/<Method>``.
    grpc_path: str
    #: The HTTP methods of its bindings, upper case and sorted.
    methods: tuple[str, ...]


@dataclass(frozen=True)
class PublicApi:
    #: Fully qualified names of the services the transcoder serves, sorted.
    services: tuple[str, ...]
    #: One entry per distinct path template, sorted by template.
    routes: tuple[RestRoute, ...]
    #: The RPCs whose success is not a 200 with a body, sorted by gRPC path.
    answers: tuple[RestAnswer, ...] = ()
    #: Every RPC with a REST binding, sorted by gRPC path.
    rpcs: tuple[RpcMethods, ...] = ()


def http_bindings(rule: http_pb2.HttpRule) -> Iterator[tuple[str, str]]:
    """(METHOD, path template) of a rule and of its additional bindings."""
    for one in (rule, *rule.additional_bindings):
        kind = one.WhichOneof("pattern")
        if kind in _METHODS:
            yield kind.upper(), str(getattr(one, kind))
        elif kind == "custom":
            yield one.custom.kind.upper(), one.custom.path


def _rest_answer(options: descriptor_pb2.MethodOptions) -> tuple[int, bool]:
    """(status, no_body) from a method's ``rest_status`` and ``rest_no_body`` options."""
    found = {option.full_name: value for option, value in options.ListFields()}
    status = int(found.get(rest_pb2.rest_status.full_name, 0)) or 200
    return status, bool(found.get(rest_pb2.rest_no_body.full_name, False))


def read_public_api(descriptor: Path) -> PublicApi:
    files = descriptor_pb2.FileDescriptorSet.FromString(descriptor.read_bytes()).file
    public = [f for f in files if f.package == PUBLIC_PACKAGE]
    services: list[str] = []
    methods: dict[str, set[str]] = {}
    answers: list[RestAnswer] = []
    rpcs: list[RpcMethods] = []
    for file in public:
        for service in file.service:
            services.append(f"{PUBLIC_PACKAGE}.{service.name}")
            for method in service.method:
                path = f"/{PUBLIC_PACKAGE}.{service.name}/{method.name}"
                status, no_body = _rest_answer(method.options)
                if status != 200 or no_body:
                    answers.append(RestAnswer(path, status, no_body))
                rule = method.options.Extensions[annotations_pb2.http]
                verbs: set[str] = set()
                for verb, template in http_bindings(rule):
                    methods.setdefault(template, set()).add(verb)
                    verbs.add(verb)
                if verbs:
                    rpcs.append(RpcMethods(path, tuple(sorted(verbs))))
    if not services:
        raise ValueError(f"{descriptor} has no service in package {PUBLIC_PACKAGE}")
    routes = tuple(RestRoute(t, tuple(sorted(m))) for t, m in sorted(methods.items()))
    answers.sort(key=lambda a: a.grpc_path)
    rpcs.sort(key=lambda r: r.grpc_path)
    return PublicApi(tuple(sorted(services)), routes, tuple(answers), tuple(rpcs))
