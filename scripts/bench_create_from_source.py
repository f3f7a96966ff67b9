#!/usr/bin/env python3
"""Create-from-snapshot latency over the public REST API (Cinder v3, noauth token).

    scripts/bench_create_from_source.py http://127.0.0.1:8776 --count 30

Makes one source volume and one snapshot of it, then ``--count`` volumes from the snapshot,
one at a time (closed loop): each is timed from the POST until GET shows it ``available``
(polled every ``--poll`` seconds, so a figure carries up to one poll interval). Prints the
median and the p95 of those latencies (and of the POST's 202 alone), then deletes what it
made. ``--source-volid`` times clones of the volume instead. Standard library only; only the
given endpoint is contacted.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import urllib.error
import urllib.request
import uuid
from typing import Any

TIMEOUT = 120.0


class Api:
    def __init__(self, endpoint: str, project: str, user: str) -> None:
        self.base = f"{endpoint.rstrip('/')}/v3/{project}"
        self.headers = {"X-Auth-Token": f"{user}:{project}", "Content-Type": "application/json"}

    def call(self, method: str, path: str, body: object = None) -> tuple[int, Any]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            f"{self.base}/{path}", data=data, headers=self.headers, method=method
        )
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
                raw = response.read()
                return response.status, json.loads(raw) if raw else None
        except urllib.error.HTTPError as error:
            raw = error.read()
            return error.code, json.loads(raw) if raw else None

    def wait(self, path: str, key: str, wanted: str, poll: float) -> None:
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            status, body = self.call("GET", path)
            if status == 404 and wanted == "gone":
                return
            if status == 200 and body[key]["status"] == wanted:
                return
            if status == 200 and body[key]["status"].startswith("error"):
                raise SystemExit(f"{path} went to {body[key]['status']}")
            time.sleep(poll)
        raise SystemExit(f"{path} never became {wanted}")


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("endpoint", help="the gateway's URL, e.g. http://127.0.0.1:8776")
    parser.add_argument("--project", default=f"bench-{uuid.uuid4().hex[:8]}")
    parser.add_argument("--user", default="bench")
    parser.add_argument("--count", type=int, default=30)
    parser.add_argument("--size", type=int, default=1, help="GiB of the source volume")
    parser.add_argument("--poll", type=float, default=0.01)
    parser.add_argument("--source-volid", action="store_true", help="clone the volume instead")
    args = parser.parse_args()
    api = Api(args.endpoint, args.project, args.user)

    status, body = api.call("POST", "volumes", {"volume": {"size": args.size, "name": "src"}})
    assert status == 202, body
    source = body["volume"]["id"]
    api.wait(f"volumes/{source}", "volume", "available", args.poll)
    snapshot = None
    if args.source_volid:
        what: dict[str, str] = {"source_volid": source}
    else:
        status, body = api.call("POST", "snapshots", {"snapshot": {"volume_id": source}})
        assert status == 202, body
        snapshot = body["snapshot"]["id"]
        api.wait(f"snapshots/{snapshot}", "snapshot", "available", args.poll)
        what = {"snapshot_id": snapshot}

    accepted: list[float] = []
    completed: list[float] = []
    made: list[str] = []
    for _ in range(args.count):
        start = time.monotonic()
        status, body = api.call("POST", "volumes", {"volume": what})
        accepted.append(time.monotonic() - start)
        assert status == 202, body
        made.append(body["volume"]["id"])
        api.wait(f"volumes/{made[-1]}", "volume", "available", args.poll)
        completed.append(time.monotonic() - start)

    for volume_id in made:
        api.call("DELETE", f"volumes/{volume_id}")
    for volume_id in made:
        api.wait(f"volumes/{volume_id}", "volume", "gone", 0.05)
    if snapshot is not None:
        api.call("DELETE", f"snapshots/{snapshot}")
        api.wait(f"snapshots/{snapshot}", "snapshot", "gone", 0.05)
    api.call("DELETE", f"volumes/{source}")

    kind = "clone of a volume" if args.source_volid else "volume from a snapshot"
    print(f"{kind}: {args.count} creates, one at a time, poll {args.poll * 1000:.0f} ms")
    for name, values in (("until 202", accepted), ("until available", completed)):
        print(
            f"  {name:16} p50 {statistics.median(values) * 1000:7.1f} ms"
            f"   p95 {percentile(values, 0.95) * 1000:7.1f} ms"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
