"""Attachments through the real, unmodified python-cinderclient CLI (``cinder attachment-*``,
noauth as test_clients drives it), and as one trace each: an attachment update is Envoy's span,
the api's AttachmentService/UpdateAttachment, the manager's VolumeManager/InitializeConnection
and its ``volume.initialize_connection`` span, down to the driver's call, every span with the
request id. Effects are checked over plain REST, never by exit codes alone."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx

from cindermesh.telemetry.request_id import REQUEST_ID_ATTRIBUTE
from tests.e2e.client_helpers import CinderCli, parse_list_table, parse_property_table, rest_volume
from tests.e2e.cluster import Cluster
from tests.e2e.helpers import db_rows, headers
from tests.e2e.otlp_receiver import OtlpReceiver
from tests.e2e.test_snapshot_tracing import _chain, _trace_of

USER = "attach-cli-user"
UPDATE = [
    ("cindermesh-api", "cindermesh.api.v1.AttachmentService/UpdateAttachment"),
    ("cindermesh-volume", "cindermesh.volume.v1.VolumeManager/InitializeConnection"),
    ("cindermesh-volume", "volume.initialize_connection"),
    ("cindermesh-volume", "volume.driver.file.initialize_connection"),
]


def _volume_status(cluster: Cluster, project: str, volume_id: str) -> tuple[str, str, int]:
    """The volume's status and its attachments shown over REST; its attach status (which
    Cinder's view does not show) from the database."""
    url = f"{cluster.rest_url}/v3/{project}/volumes/{volume_id}"
    shown = httpx.get(url, headers=headers(project, "admin"), timeout=30).json()["volume"]
    ((attach_status,),) = db_rows(
        cluster, "SELECT attach_status FROM volumes WHERE id = ?", volume_id
    )
    return shown["status"], attach_status, len(shown["attachments"])


def test_cinder_attachment_commands(cluster: Cluster, project: str, tmp_path: Path) -> None:
    cli = CinderCli(rest_url=cluster.rest_url, user=USER, project=project, home=tmp_path)
    volume = rest_volume(cluster, project, USER, "attach-cli-vol")
    server = str(uuid.uuid4())
    v = ("--os-volume-api-version", "3.44")
    created = parse_property_table(cli.ok(*v, "attachment-create", volume["id"], server))
    attachment_id = created["id"]
    assert created["status"] == "reserved"
    assert _volume_status(cluster, project, volume["id"])[0] == "reserved"
    listed = parse_list_table(cli.ok(*v, "attachment-list", "--volume-id", volume["id"]))
    assert [(r["ID"], r["Status"], r["Server ID"]) for r in listed] == [
        (attachment_id, "reserved", server)
    ]
    update_output = cli.ok(
        *v,
        "attachment-update",
        "--initiator",
        "iqn.1993-08.org.debian:01:cli",
        "--ip",
        "192.0.2.20",
        "--host",
        "cli-host",
        "--mountpoint",
        "/dev/vdb",
        attachment_id,
    )
    # Two tables: the attachment as Cinder read it before connecting it, then its connection
    # information.
    assert parse_property_table(update_output)["status"] == "reserved"
    assert "device_path" in update_output and "local" in update_output
    cli.ok(*v, "attachment-complete", attachment_id)
    assert _volume_status(cluster, project, volume["id"]) == ("in-use", "attached", 1)
    shown = parse_property_table(cli.ok(*v, "attachment-show", attachment_id))
    assert (shown["status"], shown["instance"]) == ("attached", server)
    cli.ok(*v, "attachment-delete", attachment_id)
    assert _volume_status(cluster, project, volume["id"]) == ("available", "detached", 0)
    assert parse_list_table(cli.ok(*v, "attachment-list", "--volume-id", volume["id"])) == []


def test_an_attachment_update_is_one_trace(
    cluster: Cluster, otlp_receiver: OtlpReceiver, project: str
) -> None:
    hdrs = headers(project, version="3.44")
    base = f"{cluster.rest_url}/v3/{project}"
    volume = rest_volume(cluster, project, "u1", "traced-attach")
    with httpx.Client(timeout=60) as client:
        body = {"attachment": {"volume_uuid": volume["id"], "instance_uuid": str(uuid.uuid4())}}
        created = client.post(f"{base}/attachments", headers=hdrs, json=body)
        assert created.status_code == 200, created.text
        attachment_id = created.json()["attachment"]["id"]
        connector = {"host": "traced-host", "ip": "192.0.2.30", "initiator": "iqn.x"}
        updated = client.put(
            f"{base}/attachments/{attachment_id}",
            headers=hdrs,
            json={"attachment": {"connector": connector}},
        )
        assert updated.status_code == 200, updated.text
        request_id = updated.headers["x-openstack-request-id"]
        assert client.delete(f"{base}/attachments/{attachment_id}", headers=hdrs).status_code == 200

    trace = _trace_of(otlp_receiver, request_id, UPDATE)
    assert all(s.attributes.get(REQUEST_ID_ATTRIBUTE) == request_id for s in trace)
    chain = _chain(trace, "volume.driver.file.initialize_connection")
    assert chain[-1] == "cindermesh-gateway"
    assert {"cindermesh-api", "cindermesh-volume"} <= set(chain)
    manager_span = next(s for s in trace if s.name == "volume.initialize_connection")
    assert manager_span.attributes.get("connector.host") == "traced-host"
    assert manager_span.attributes.get("connection.driver_volume_type") == "local"
