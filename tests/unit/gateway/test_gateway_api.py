"""The gateway's knowledge of the public API, derived from the descriptor set."""

from __future__ import annotations

from pathlib import Path

import pytest
from google.api import annotations_pb2
from google.protobuf import descriptor_pb2

from cindermesh.build_protos import DESCRIPTOR_SET
from cindermesh.gateway_api import read_public_api
from cindermesh.gateway_config import LUA_FILTER, render_lua_filter
from cindermesh.gateway_faults import ENVOY_FAULTS
from cindermesh_pb.api.v1 import json_key_pb2


def _descriptor_set() -> descriptor_pb2.FileDescriptorSet:
    return descriptor_pb2.FileDescriptorSet.FromString(DESCRIPTOR_SET.read_bytes())


def test_services_are_every_service_of_the_public_package() -> None:
    expected = sorted(
        f"cindermesh.api.v1.{s.name}"
        for f in _descriptor_set().file
        if f.package == "cindermesh.api.v1"
        for s in f.service
    )
    api = read_public_api(DESCRIPTOR_SET)
    assert list(api.services) == expected
    assert "cindermesh.api.v1.VersionService" in api.services
    assert not any(".scheduler." in s or ".volume." in s for s in api.services)


def test_routes_are_every_http_binding_with_its_methods() -> None:
    expected: dict[str, set[str]] = {}
    for file in _descriptor_set().file:
        if file.package != "cindermesh.api.v1":
            continue
        for service in file.service:
            for method in service.method:
                rule = method.options.Extensions[annotations_pb2.http]
                for one in (rule, *rule.additional_bindings):
                    kind = one.WhichOneof("pattern")
                    expected.setdefault(getattr(one, kind), set()).add(kind.upper())
    routes = {r.template: set(r.methods) for r in read_public_api(DESCRIPTOR_SET).routes}
    assert routes == expected
    assert routes["/"] == {"GET"} and routes["/v3"] == {"GET"}
    assert {"GET", "DELETE"} <= routes["/v3/{project_id}/volumes/{volume_id}"]
    assert {"GET", "POST"} <= routes["/v3/volumes"]


def test_json_names_are_proto_names_or_the_json_key_option() -> None:
    names = {
        (message.name, field.name): field.json_name
        for f in _descriptor_set().file
        if f.package.startswith("cindermesh.")
        for message in f.message_type
        for field in message.field
    }
    assert names[("ApiVersion", "media_types")] == "media-types"
    assert names[("Volume", "os_vol_host_attr_host")] == "os-vol-host-attr:host"
    assert names[("Volume", "os_vol_tenant_attr_tenant_id")] == "os-vol-tenant-attr:tenant_id"
    assert names[("VolumeType", "os_volume_type_access_is_public")] == (
        "os-volume-type-access:is_public"
    )
    assert names[("Volume", "availability_zone")] == "availability_zone"
    annotated = {
        (message.name, field.name)
        for f in _descriptor_set().file
        for message in f.message_type
        for field in message.field
        if field.options.Extensions[json_key_pb2.json_key]
    }
    assert {k for k, v in names.items() if v != k[1]} == annotated


def test_descriptor_without_public_services_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "empty.pb"
    path.write_bytes(descriptor_pb2.FileDescriptorSet().SerializeToString())
    with pytest.raises(ValueError, match="no service"):
        read_public_api(path)


def test_rendered_lua_has_its_generated_line_and_no_cinder_message() -> None:
    source = render_lua_filter()
    assert "@generated" not in source
    assert "local UNSHAPED = { [503] = " in source
    handwritten = LUA_FILTER.read_text()
    for fault in ENVOY_FAULTS:
        assert fault.message not in handwritten


def test_rest_answers_come_from_the_method_options() -> None:
    answers = {a.grpc_path: (a.status, a.no_body) for a in read_public_api(DESCRIPTOR_SET).answers}
    volumes = "/cindermesh.api.v1.VolumeService/"
    assert all(200 <= status < 400 for status, _ in answers.values())
    # Every RPC that is not a 200 with a body declares it; these are Cinder's, among others.
    assert (
        answers.items()
        >= {
            f"{volumes}CreateVolume": (202, False),
            f"{volumes}DeleteVolume": (202, True),
            f"{volumes}DeleteVolumeMetadataItem": (200, True),
            "/cindermesh.api.v1.TypeService/DeleteType": (202, True),
            "/cindermesh.api.v1.QuotaService/DeleteQuotaSet": (200, True),
            "/cindermesh.api.v1.VersionService/ListVersions": (300, False),
            "/cindermesh.api.v1.MessageService/DeleteMessage": (204, True),
        }.items()
    )
