#!/usr/bin/env python3
"""Replays, once, the Cinder calls of one Nova volume attach and detach against a running
cindermesh, and prints every request and response as Markdown (for a closing note).

    scripts/show_nova_attach.py [BASE_URL] [PROJECT] [--user u1] [--host compute-1]

Defaults: ``http://127.0.0.1:8776`` and the README's project (``scripts/up``'s Envoy). The
calls are Nova's (``nova/volume/cinder.py`` through python-cinderclient, the microversions
and bodies its callers use): GET the volume (3.0), ``attachment_create`` without a connector
(3.44), GET the volume (3.69, as ``DriverVolumeBlockDevice._get_volume``), ``attachment_update``
with an os-brick connector and the mountpoint (3.44), ``attachment_complete`` (3.44); then
GET (3.0), ``os-begin_detaching`` (3.0), GET (3.69), ``attachment_delete`` (3.44). A volume is
created for it first and deleted after. Standard library only; only BASE_URL is contacted.
Exits 1 if an answer is not the one Nova needs.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from typing import Any

DEFAULT_URL = "http://127.0.0.1:8776"
DEFAULT_PROJECT = "5ca1ab1e000000000000000000000001"
TIMEOUT = 60.0
SHOWN_RESPONSE_HEADERS = ("x-openstack-request-id", "openstack-api-version")


@dataclass(frozen=True)
class Answer:
    status: int
    reason: str
    headers: dict[str, str]
    body: Any


class Replay:
    def __init__(self, base_url: str, project: str, user: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.project = project
        self.token = f"{user}:{project}"
        self.step = 0

    def call(
        self, why: str, method: str, path: str, body: Any = None, version: str | None = None
    ) -> Answer:
        """One exchange, printed; ``path`` under ``/v3/{project}``."""
        url_path = f"/v3/{self.project}{path}"
        headers = {"X-Auth-Token": self.token, "Accept": "application/json"}
        if version is not None:  # cinderclient sends none for 3.0
            headers["OpenStack-API-Version"] = f"volume {version}"
        data = None
        if body is not None:
            headers["Content-Type"] = "application/json"
            data = json.dumps(body).encode()
        request = urllib.request.Request(
            self.base_url + url_path, data=data, headers=headers, method=method
        )
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
                answer = _answer(
                    response.status, response.reason, response.headers, response.read()
                )
        except urllib.error.HTTPError as error:
            answer = _answer(error.code, error.reason, error.headers, error.read())
        self.step += 1
        _print_exchange(self.step, why, method, url_path, headers, body, answer)
        return answer

    def wait(self, volume_id: str, wanted: str) -> None:
        """Polls (unprinted) until the volume is ``wanted``."""
        deadline = time.monotonic() + TIMEOUT
        url = f"{self.base_url}/v3/{self.project}/volumes/{volume_id}"
        while True:
            request = urllib.request.Request(url, headers={"X-Auth-Token": self.token})
            with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
                status = json.loads(response.read())["volume"]["status"]
            if status == wanted:
                return
            if status == "error" or time.monotonic() > deadline:
                raise SystemExit(f"volume {volume_id} is {status}, never {wanted}")
            time.sleep(0.05)


def _answer(status: int, reason: str, headers: Any, raw: bytes) -> Answer:
    shown = {k.lower(): v for k, v in headers.items() if k.lower() in SHOWN_RESPONSE_HEADERS}
    body = json.loads(raw) if raw else None
    return Answer(status, reason, shown, body)


def _print_exchange(
    step: int,
    why: str,
    method: str,
    path: str,
    headers: dict[str, str],
    body: Any,
    answer: Answer,
) -> None:
    print(f"### {step}. {why}\n")
    print(f"`{method} {path}`\n")
    print("```http")
    print(f"{method} {path}")
    for key, value in headers.items():
        if key != "Accept":
            print(f"{key}: {value}")
    if body is not None:
        print()
        print(json.dumps(body, indent=2))
    print("```\n")
    print("```http")
    print(f"{answer.status} {answer.reason}")
    for key, value in answer.headers.items():
        print(f"{key}: {value}")
    if answer.body is not None:
        print()
        print(json.dumps(answer.body, indent=2))
    print("```\n")


def os_brick_connector(host: str) -> dict[str, Any]:
    """Nova's libvirt ``get_volume_connector`` (os-brick's connector properties)."""
    return {
        "platform": "x86_64",
        "os_type": "linux",
        "ip": "192.0.2.10",
        "host": host,
        "multipath": False,
        "initiator": f"iqn.2004-10.com.ubuntu:01:{host}",
        "do_local_attach": False,
        "uuid": "4c4c4544-0051-3510-8052-b4c04f4e3732",
        "nvme_native_multipath": False,
        "found_dsc": "",
    }


def expect(answer: Answer, status: int, what: str) -> None:
    if answer.status != status:
        raise SystemExit(f"{what}: expected {status}, got {answer.status} {answer.body}")


def replay(api: Replay, host: str) -> None:
    instance = str(uuid.uuid4())
    print(f"# Nova's volume attach and detach, replayed against `{api.base_url}`\n")
    print(f"Project `{api.project}`, server `{instance}`, compute host `{host}`.\n")
    created = api.call("Set-up: a 1 GiB volume", "POST", "/volumes", {"volume": {"size": 1}})
    expect(created, 202, "create volume")
    vid = created.body["volume"]["id"]
    api.wait(vid, "available")
    try:
        expect(
            api.call("compute API `attach_volume`: `volume_api.get`", "GET", f"/volumes/{vid}"),
            200,
            "get volume",
        )
        body = {"attachment": {"volume_uuid": vid, "connector": None, "instance_uuid": instance}}
        made = api.call(
            "`check_attach_and_reserve_volume`: `attachment_create` (no connector)",
            "POST",
            "/attachments",
            body,
            "3.44",
        )
        expect(made, 200, "attachment_create")
        aid = made.body["attachment"]["id"]
        expect(
            api.call(
                "compute manager: `DriverVolumeBlockDevice._get_volume`",
                "GET",
                f"/volumes/{vid}",
                version="3.69",
            ),
            200,
            "get volume",
        )
        connector = os_brick_connector(host) | {"mountpoint": "/dev/vdb"}
        updated = api.call(
            "`_volume_attach`: `attachment_update` (connector with the mountpoint)",
            "PUT",
            f"/attachments/{aid}",
            {"attachment": {"connector": connector}},
            "3.44",
        )
        expect(updated, 200, "attachment_update")
        if not updated.body["attachment"]["connection_info"].get("driver_volume_type"):
            raise SystemExit("attachment_update answered no driver_volume_type")
        expect(
            api.call(
                "`_volume_attach`: `attachment_complete`",
                "POST",
                f"/attachments/{aid}/action",
                {"os-complete": None},
                "3.44",
            ),
            204,
            "attachment_complete",
        )
        shown = api.call("The volume attached", "GET", f"/volumes/{vid}", version="3.69")
        if shown.body["volume"]["status"] != "in-use":
            raise SystemExit(f"volume not in-use: {shown.body}")
        expect(
            api.call("compute API `detach_volume`: `volume_api.get`", "GET", f"/volumes/{vid}"),
            200,
            "get volume",
        )
        expect(
            api.call(
                "`_detach_volume`: `begin_detaching`",
                "POST",
                f"/volumes/{vid}/action",
                {"os-begin_detaching": None},
            ),
            202,
            "begin_detaching",
        )
        expect(
            api.call(
                "compute manager: `DriverVolumeBlockDevice._get_volume`",
                "GET",
                f"/volumes/{vid}",
                version="3.69",
            ),
            200,
            "get volume",
        )
        expect(
            api.call(
                "`_do_detach`: `attachment_delete`", "DELETE", f"/attachments/{aid}", None, "3.44"
            ),
            200,
            "attachment_delete",
        )
        after = api.call("The volume detached", "GET", f"/volumes/{vid}", version="3.69")
        if after.body["volume"]["status"] != "available":
            raise SystemExit(f"volume not available: {after.body}")
    finally:
        api.call("Clean-up", "DELETE", f"/volumes/{vid}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("base_url", nargs="?", default=DEFAULT_URL)
    parser.add_argument("project", nargs="?", default=DEFAULT_PROJECT)
    parser.add_argument("--user", default="u1")
    parser.add_argument("--host", default="compute-1", help="the compute host in the connector")
    args = parser.parse_args(argv)
    replay(Replay(args.base_url, args.project, args.user), args.host)
    return 0


if __name__ == "__main__":
    sys.exit(main())
