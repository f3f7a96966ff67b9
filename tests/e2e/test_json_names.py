"""Cinder's JSON keys come from the contract (each field's json_name in the descriptor set),
never from rewriting response text: metadata and extra-spec keys, and string values, spelled
like any annotated proto field come back exactly as stored."""

from __future__ import annotations

import uuid

import httpx
from google.protobuf import descriptor_pb2

from cindermesh.build_protos import DESCRIPTOR_SET
from cindermesh_pb.api.v1 import json_key_pb2
from tests.e2e.cluster import Cluster
from tests.e2e.helpers import headers


def _annotated() -> list[tuple[str, str]]:
    """(proto field name, JSON key) of every field with the json_key option."""
    files = descriptor_pb2.FileDescriptorSet.FromString(DESCRIPTOR_SET.read_bytes()).file
    return sorted(
        {
            (field.name, field.options.Extensions[json_key_pb2.json_key])
            for f in files
            for message in f.message_type
            for field in message.field
            if field.options.Extensions[json_key_pb2.json_key]
        }
    )


def test_metadata_keys_like_annotated_fields_round_trip(cluster: Cluster, project: str) -> None:
    names = _annotated()
    assert len(names) >= 5
    metadata = {name: f'"{name}": {key}' for name, key in names}
    base = f"{cluster.rest_url}/v3/{project}/volumes"
    hdrs = headers(project)
    with httpx.Client(timeout=30) as client:
        created = client.post(
            base, headers=hdrs, json={"volume": {"size": 1, "metadata": metadata}}
        )
        assert created.status_code == 202, created.text
        volume_id = created.json()["volume"]["id"]
        assert created.json()["volume"]["metadata"] == metadata
        shown = client.get(f"{base}/{volume_id}", headers=hdrs).json()["volume"]
        assert shown["metadata"] == metadata
        assert "os-vol-tenant-attr:tenant_id" in shown  # the real keys are still Cinder's
        listed = client.get(f"{base}/detail", headers=hdrs).json()["volumes"]
        assert [v["metadata"] for v in listed if v["id"] == volume_id] == [metadata]
        for name, _ in names:
            item = client.get(f"{base}/{volume_id}/metadata/{name}", headers=hdrs)
            assert item.json() == {"meta": {name: metadata[name]}}, item.text
        first = names[0][0]
        updated = client.put(
            f"{base}/{volume_id}/metadata/{first}", headers=hdrs, json={"meta": {first: "x"}}
        )
        assert updated.json() == {"meta": {first: "x"}}
        deleted = client.delete(f"{base}/{volume_id}/metadata/{first}", headers=hdrs)
        assert deleted.status_code == 200, deleted.text
        left = client.get(f"{base}/{volume_id}/metadata", headers=hdrs).json()["metadata"]
        assert left == {k: v for k, v in metadata.items() if k != first}


def test_extra_spec_keys_like_annotated_fields_round_trip(cluster: Cluster) -> None:
    admin = headers(uuid.uuid4().hex, user="admin")
    project = admin["X-Auth-Token"].partition(":")[2]
    specs = {name: key for name, key in _annotated()}
    url = f"{cluster.rest_url}/v3/{project}/types"
    with httpx.Client(timeout=30) as client:
        created = client.post(
            url,
            headers=admin,
            json={"volume_type": {"name": f"t-{uuid.uuid4().hex[:8]}", "extra_specs": specs}},
        )
        assert created.status_code == 200, created.text
        assert created.json()["volume_type"]["extra_specs"] == specs
        type_id = created.json()["volume_type"]["id"]
        shown = client.get(f"{url}/{type_id}", headers=admin).json()["volume_type"]
        assert shown["extra_specs"] == specs
        assert "os-volume-type-access:is_public" in shown
