"""One REST snapshot create (and delete) is one trace: Envoy's span, the api's RPC, the volume
manager's RPC and flow steps down to the driver's call, every span with the request id."""

from __future__ import annotations

import httpx

from cindermesh.telemetry.request_id import REQUEST_ID_ATTRIBUTE
from cindermesh.telemetry.span_records import SpanRecord
from tests.e2e.cluster import Cluster
from tests.e2e.helpers import headers, wait_for_404, wait_for_status
from tests.e2e.otlp_receiver import OtlpReceiver

CREATE = [
    ("cindermesh-api", "cindermesh.api.v1.SnapshotService/CreateSnapshot"),
    ("cindermesh-volume", "cindermesh.volume.v1.VolumeManager/CreateSnapshot"),
    ("cindermesh-volume", "volume.create_snapshot"),
    ("cindermesh-volume", "volume.create_snapshot.ExtractSnapshotRef"),
    ("cindermesh-volume", "volume.create_snapshot.CreateSnapshotOnDriver"),
    ("cindermesh-volume", "volume.driver.file.create_snapshot"),
    ("cindermesh-volume", "volume.create_snapshot.CreateSnapshotOnFinish"),
]
DELETE = [
    ("cindermesh-api", "cindermesh.api.v1.SnapshotService/DeleteSnapshot"),
    ("cindermesh-volume", "cindermesh.volume.v1.VolumeManager/DeleteSnapshot"),
    ("cindermesh-volume", "volume.delete_snapshot"),
    ("cindermesh-volume", "volume.delete_snapshot.DeleteSnapshotOnDriver"),
    ("cindermesh-volume", "volume.driver.file.delete_snapshot"),
    ("cindermesh-volume", "volume.delete_snapshot.DeleteSnapshotOnFinish"),
]


def _trace_of(
    receiver: OtlpReceiver, request_id: str, expected: list[tuple[str, str]]
) -> list[SpanRecord]:
    def of_request(spans: list[SpanRecord]) -> list[SpanRecord]:
        return [s for s in spans if s.attributes.get(REQUEST_ID_ATTRIBUTE) == request_id]

    def complete(spans: list[SpanRecord]) -> bool:
        names = {(s.service, s.name) for s in of_request(spans)}
        return "cindermesh-gateway" in {s for s, _ in names} and set(expected) <= names

    spans = of_request(receiver.wait_for(complete))
    assert complete(spans), sorted({(s.service, s.name) for s in spans})
    assert len({s.trace_id for s in spans}) == 1
    return [s for s in receiver.spans() if s.trace_id == spans[0].trace_id]


def _chain(trace: list[SpanRecord], name: str) -> list[str]:
    """The services from the span named ``name`` up to the trace's root."""
    by_id = {s.span_id: s for s in trace}
    node: SpanRecord | None = next(s for s in trace if s.name == name)
    services = []
    while node is not None:
        services.append(node.service)
        node = by_id.get(node.parent_span_id or "")
    return services


def test_snapshot_create_and_delete_are_one_trace_each(
    cluster: Cluster, otlp_receiver: OtlpReceiver, project: str
) -> None:
    hdrs = headers(project)
    base = f"{cluster.rest_url}/v3/{project}"
    with httpx.Client(timeout=60) as client:
        created = client.post(f"{base}/volumes", headers=hdrs, json={"volume": {"size": 1}})
        volume_id = created.json()["volume"]["id"]
        wait_for_status(client, f"{base}/volumes/{volume_id}", hdrs, "available")
        body = {"snapshot": {"volume_id": volume_id, "name": "traced"}}
        response = client.post(f"{base}/snapshots", headers=hdrs, json=body)
        assert response.status_code == 202, response.text
        create_id = response.headers["x-openstack-request-id"]
        url = f"{base}/snapshots/{response.json()['snapshot']['id']}"
        wait_for_status(client, url, hdrs, "available", resource="snapshot")
        deleted = client.delete(url, headers=hdrs)
        assert deleted.status_code == 202
        delete_id = deleted.headers["x-openstack-request-id"]
        assert wait_for_404(client, url, hdrs).status_code == 404

    trace = _trace_of(otlp_receiver, create_id, CREATE)
    assert all(s.attributes.get(REQUEST_ID_ATTRIBUTE) == create_id for s in trace)
    chain = _chain(trace, "volume.driver.file.create_snapshot")
    assert chain[-1] == "cindermesh-gateway"
    assert {"cindermesh-api", "cindermesh-volume"} <= set(chain)
    trace = _trace_of(otlp_receiver, delete_id, DELETE)
    assert _chain(trace, "volume.driver.file.delete_snapshot")[-1] == "cindermesh-gateway"
