"""One REST create is one trace: Envoy's span, then api, scheduler and volume spans down to the
driver, every span carrying the request id; spans arrive at a real OTLP/gRPC receiver."""

from __future__ import annotations

import httpx

from cindermesh.telemetry.request_id import REQUEST_ID_ATTRIBUTE
from cindermesh.telemetry.span_records import SpanRecord
from tests.e2e.cluster import Cluster
from tests.e2e.helpers import headers, wait_for_status
from tests.e2e.otlp_receiver import OtlpReceiver

EXPECTED = [
    ("cindermesh-gateway", None),
    ("cindermesh-api", "cindermesh.api.v1.VolumeService/CreateVolume"),
    ("cindermesh-api", "api.create_volume.ExtractVolumeRequest"),
    ("cindermesh-api", "api.create_volume.QuotaReserve"),
    ("cindermesh-api", "api.create_volume.EntryCreate"),
    ("cindermesh-api", "api.create_volume.QuotaCommit"),
    ("cindermesh-api", "api.create_volume.VolumeCast"),
    ("cindermesh-scheduler", "cindermesh.scheduler.v1.Scheduler/CreateVolume"),
    ("cindermesh-scheduler", "scheduler.filter.AvailabilityZoneFilter"),
    ("cindermesh-scheduler", "scheduler.filter.CapacityFilter"),
    ("cindermesh-scheduler", "scheduler.filter.CapabilitiesFilter"),
    ("cindermesh-scheduler", "scheduler.weigher.CapacityWeigher"),
    ("cindermesh-volume", "cindermesh.volume.v1.VolumeManager/CreateVolume"),
    ("cindermesh-volume", "volume.create_volume.CreateVolumeFromSpec"),
    ("cindermesh-volume", "volume.driver.file.create"),
    ("cindermesh-volume", "volume.create_volume.CreateVolumeOnFinish"),
]


def _has_all(spans: list[SpanRecord]) -> bool:
    names = {(s.service, s.name) for s in spans}
    services = {s.service for s in spans}
    return "cindermesh-gateway" in services and all(
        (svc, name) in names for svc, name in EXPECTED if name is not None
    )


def test_one_create_is_one_trace(
    cluster: Cluster, otlp_receiver: OtlpReceiver, project: str
) -> None:
    with httpx.Client() as client:
        response = client.post(
            f"{cluster.rest_url}/v3/{project}/volumes",
            headers=headers(project),
            json={"volume": {"size": 1, "name": "traced"}},
        )
        assert response.status_code == 202
        request_id = response.headers["x-openstack-request-id"]
        volume_id = response.json()["volume"]["id"]
        url = f"{cluster.rest_url}/v3/{project}/volumes/{volume_id}"
        wait_for_status(client, url, headers(project), "available")

    def of_request(spans: list[SpanRecord]) -> list[SpanRecord]:
        return [s for s in spans if s.attributes.get(REQUEST_ID_ATTRIBUTE) == request_id]

    spans = of_request(otlp_receiver.wait_for(lambda all_: _has_all(of_request(all_))))
    assert _has_all(spans), sorted({(s.service, s.name) for s in spans})

    # A single trace, rooted at Envoy's span.
    assert len({s.trace_id for s in spans}) == 1
    trace_id = spans[0].trace_id
    whole_trace = [s for s in otlp_receiver.spans() if s.trace_id == trace_id]
    # Every span of that trace carries the request id.
    assert all(s.attributes.get(REQUEST_ID_ATTRIBUTE) == request_id for s in whole_trace), [
        (s.service, s.name) for s in whole_trace if REQUEST_ID_ATTRIBUTE not in s.attributes
    ]
    by_id = {s.span_id: s for s in whole_trace}
    roots = [s for s in whole_trace if s.parent_span_id not in by_id]
    assert [r.service for r in roots] == ["cindermesh-gateway"]

    # The driver span descends from Envoy's through api, scheduler and volume manager.
    driver = next(s for s in whole_trace if s.name == "volume.driver.file.create")
    chain = []
    node: SpanRecord | None = driver
    while node is not None:
        chain.append(node.service)
        node = by_id.get(node.parent_span_id or "")
    assert chain[-1] == "cindermesh-gateway"
    assert {"cindermesh-api", "cindermesh-scheduler", "cindermesh-volume"} <= set(chain)
