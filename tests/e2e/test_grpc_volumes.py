"""The same operations over gRPC, straight to the api service (no Envoy)."""

from __future__ import annotations

import time

import grpc
import pytest
from google.protobuf import json_format
from grpc_status import rpc_status

from cindermesh_pb.api.v1 import fault_pb2
from cindermesh_pb.api.v1 import volume_service_pb2 as api_pb2
from cindermesh_pb.api.v1 import volume_service_pb2_grpc as api_pb2_grpc
from tests.e2e.cluster import Cluster


def _metadata(project: str) -> tuple[tuple[str, str], ...]:
    return (("x-auth-token", f"u1:{project}"),)


def _fault(error: grpc.RpcError) -> fault_pb2.CinderFault:
    """The typed detail of an error, read with the standard rich-error helper."""
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    assert status is not None, "no grpc-status-details-bin"
    assert len(status.details) == 1
    fault = fault_pb2.CinderFault()
    assert status.details[0].Unpack(fault)
    return fault


def test_grpc_create_get_list_delete(cluster: Cluster, project: str) -> None:
    with grpc.insecure_channel(cluster.api_address) as channel:
        stub = api_pb2_grpc.VolumeServiceStub(channel)
        md = _metadata(project)
        body = json_format.ParseDict({"size": 1, "name": "g"}, api_pb2.VolumeCreate())
        created, call = stub.CreateVolume.with_call(
            api_pb2.CreateVolumeRequest(project_id=project, volume=body), metadata=md
        )
        initial = dict(call.initial_metadata())
        assert initial["x-openstack-request-id"].startswith("req-")
        volume_id = created.volume.id
        assert created.volume.status == "creating"

        deadline = time.monotonic() + 15
        while True:
            got = stub.GetVolume(
                api_pb2.GetVolumeRequest(project_id=project, volume_id=volume_id), metadata=md
            )
            if got.volume.status == "available" or time.monotonic() > deadline:
                break
            time.sleep(0.02)
        assert got.volume.status == "available"
        assert got.volume.name.string_value == "g"

        listed = stub.ListVolumesDetail(
            api_pb2.ListVolumesRequest(url_project_id=project), metadata=md
        )
        assert [v.id for v in listed.volumes] == [volume_id]

        stub.DeleteVolume(
            api_pb2.DeleteVolumeRequest(project_id=project, volume_id=volume_id), metadata=md
        )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                stub.GetVolume(
                    api_pb2.GetVolumeRequest(project_id=project, volume_id=volume_id), metadata=md
                )
            except grpc.RpcError as error:
                assert error.code() == grpc.StatusCode.NOT_FOUND
                break
            time.sleep(0.02)
        else:
            pytest.fail("volume was never deleted")


def test_grpc_invalid_argument(cluster: Cluster, project: str) -> None:
    with grpc.insecure_channel(cluster.api_address) as channel:
        stub = api_pb2_grpc.VolumeServiceStub(channel)
        body = json_format.ParseDict({"size": 0}, api_pb2.VolumeCreate())
        with pytest.raises(grpc.RpcError) as raised:
            stub.CreateVolume(
                api_pb2.CreateVolumeRequest(project_id=project, volume=body),
                metadata=_metadata(project),
            )
        assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "0 is less than the minimum of 1" in (raised.value.details() or "")
        fault = _fault(raised.value)
        assert (fault.fault_key, fault.body.code) == ("badRequest", 400)
        assert "0 is less than the minimum of 1" in fault.body.message
        assert not fault.body.HasField("retryAfter")


def test_grpc_errors_carry_the_typed_fault(cluster: Cluster, project: str) -> None:
    with grpc.insecure_channel(cluster.api_address) as channel:
        stub = api_pb2_grpc.VolumeServiceStub(channel)
        md = _metadata(project)
        missing = api_pb2.GetVolumeRequest(project_id=project, volume_id="missing")
        with pytest.raises(grpc.RpcError) as raised:
            stub.GetVolume(missing, metadata=md)
        assert raised.value.code() == grpc.StatusCode.NOT_FOUND
        fault = _fault(raised.value)
        assert (fault.fault_key, fault.body.code) == ("itemNotFound", 404)
        assert fault.body.message == "Volume missing could not be found."
        with pytest.raises(grpc.RpcError) as raised:
            stub.GetVolume(missing)
        assert (_fault(raised.value).fault_key, _fault(raised.value).body.code) == (
            "unauthorized",
            401,
        )
        other = api_pb2.GetVolumeRequest(project_id="someone-else", volume_id="missing")
        with pytest.raises(grpc.RpcError) as raised:
            stub.GetVolume(other, metadata=md)
        assert _fault(raised.value).body.code == 400
        with pytest.raises(grpc.RpcError) as raised:
            stub.GetVolume(missing, metadata=(*md, ("openstack-api-version", "volume 9.9")))
        assert (_fault(raised.value).fault_key, _fault(raised.value).body.code) == (
            "computeFault",
            406,
        )


def test_grpc_huge_echoed_message_is_bounded(cluster: Cluster, project: str) -> None:
    with grpc.insecure_channel(cluster.api_address) as channel:
        stub = api_pb2_grpc.VolumeServiceStub(channel)
        body = json_format.ParseDict(
            {"size": 1, "metadata": {"k": ["\U0001f642" * 50000]}}, api_pb2.VolumeCreate()
        )
        with pytest.raises(grpc.RpcError) as raised:
            stub.CreateVolume(
                api_pb2.CreateVolumeRequest(project_id=project, volume=body),
                metadata=_metadata(project),
            )
        assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        fault = _fault(raised.value)
        assert fault.body.code == 400 and " ... " in fault.body.message
        assert len(fault.body.message) <= 4096


def test_grpc_without_token_is_unauthenticated(cluster: Cluster, project: str) -> None:
    with grpc.insecure_channel(cluster.api_address) as channel:
        stub = api_pb2_grpc.VolumeServiceStub(channel)
        with pytest.raises(grpc.RpcError) as raised:
            stub.ListVolumes(api_pb2.ListVolumesRequest(url_project_id=project))
        assert raised.value.code() == grpc.StatusCode.UNAUTHENTICATED
