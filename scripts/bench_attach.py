#!/usr/bin/env python3
"""Attach latency over the public REST API: Nova's attachment sequence (Cinder v3, 3.44,
noauth token), as ``nova/volume/cinder.py`` issues it.

    scripts/bench_attach.py http://127.0.0.1:8776 --count 50

Makes one volume, then ``--count`` cycles, one at a time (closed loop), each of Nova's four
calls timed on its own: ``POST /attachments`` (reserve, no connector), ``PUT
/attachments/{id}`` (the connector: the volume manager answers the driver's connection
information), ``POST /attachments/{id}/action`` (``os-complete``) and ``DELETE
/attachments/{id}``. Prints the median and the p95 of each call and of the whole cycle, then
deletes the volume. Standard library only; only the given endpoint is contacted.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import uuid

from bench_create_from_source import Api, percentile

CONNECTOR = {
    "platform": "x86_64",
    "os_type": "linux",
    "ip": "192.0.2.50",
    "host": "bench-compute",
    "multipath": False,
    "initiator": "iqn.1993-08.org.debian:01:bench",
    "do_local_attach": False,
    "mountpoint": "/dev/vdb",
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("endpoint", help="the gateway's URL, e.g. http://127.0.0.1:8776")
    parser.add_argument("--project", default=f"bench-{uuid.uuid4().hex[:8]}")
    parser.add_argument("--user", default="bench")
    parser.add_argument("--count", type=int, default=50)
    args = parser.parse_args()
    api = Api(args.endpoint, args.project, args.user)
    api.headers["OpenStack-API-Version"] = "volume 3.44"

    status, body = api.call("POST", "volumes", {"volume": {"size": 1, "name": "bench-attach"}})
    assert status == 202, body
    volume = body["volume"]["id"]
    api.wait(f"volumes/{volume}", "volume", "available", 0.01)

    steps: dict[str, list[float]] = {"create": [], "update": [], "complete": [], "delete": []}
    cycles: list[float] = []
    for _ in range(args.count):
        began = time.monotonic()
        server = str(uuid.uuid4())
        calls = {
            "create": (
                "POST",
                "attachments",
                {"attachment": {"volume_uuid": volume, "instance_uuid": server}},
            ),
        }
        start = time.monotonic()
        status, body = api.call(*calls["create"])
        steps["create"].append(time.monotonic() - start)
        assert status == 200, body
        attachment = body["attachment"]["id"]
        for name, method, path, payload, expected in (
            (
                "update",
                "PUT",
                f"attachments/{attachment}",
                {"attachment": {"connector": CONNECTOR}},
                200,
            ),
            ("complete", "POST", f"attachments/{attachment}/action", {"os-complete": None}, 204),
            ("delete", "DELETE", f"attachments/{attachment}", None, 200),
        ):
            start = time.monotonic()
            status, body = api.call(method, path, payload)
            steps[name].append(time.monotonic() - start)
            assert status == expected, (name, status, body)
        cycles.append(time.monotonic() - began)

    api.call("DELETE", f"volumes/{volume}")
    api.wait(f"volumes/{volume}", "volume", "gone", 0.05)
    print(f"Nova's attach sequence: {args.count} cycles, one at a time")
    for name, values in (*steps.items(), ("whole cycle", cycles)):
        print(
            f"  {name:12} p50 {statistics.median(values) * 1000:7.1f} ms"
            f"   p95 {percentile(values, 0.95) * 1000:7.1f} ms"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
