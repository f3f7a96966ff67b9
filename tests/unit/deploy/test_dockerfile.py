"""deploy/Dockerfile, read as text (no Docker daemon here): what it copies exists and passes its
.dockerignore, the tree the services read at run time is in the image, and its entrypoint and
user are the ones compose and the manifests rely on."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from cindermesh.build_protos import REPO_ROOT
from cindermesh.gateway_config import ENVOY_DIR

DOCKERFILE = REPO_ROOT / "deploy" / "Dockerfile"
IGNORE = REPO_ROOT / "deploy" / "Dockerfile.dockerignore"


def stages() -> dict[str, list[str]]:
    """Each stage's instructions (continuation lines joined), by its name."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    found: dict[str, list[str]] = {}
    current: list[str] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if match := re.match(r"FROM \S+ AS (\S+)$", line):
            current = found.setdefault(match.group(1), [])
        current.append(line)
    return found


def copied() -> list[str]:
    return [
        line.split()[1]
        for lines in stages().values()
        for line in lines
        if line.startswith("COPY ") and "--from" not in line
    ]


def included(source: str) -> bool:
    """Whether the build context keeps ``source``: the ignore file excludes everything (``*``)
    and names what it keeps (``!path``)."""
    rules = [r for r in IGNORE.read_text().splitlines() if r and not r.startswith("#")]
    assert rules[0] == "*"
    kept = [r[1:].rstrip("/") for r in rules if r.startswith("!")]
    return any(source.rstrip("/") == k or source.startswith(f"{k}/") for k in kept)


def test_everything_copied_exists_and_is_in_the_build_context() -> None:
    for source in copied():
        assert (REPO_ROOT / source).exists(), source
        assert included(source), f"{source} is left out of the build context"


def test_what_the_services_read_at_run_time_is_copied() -> None:
    sources = copied()
    needed = [ENVOY_DIR, REPO_ROOT / "protos", REPO_ROOT / "cindermesh", REPO_ROOT / "services"]
    for path in needed:
        relative = path.relative_to(REPO_ROOT).as_posix()
        assert relative in sources, relative
    # Made by the build as scripts/setup makes it, never copied from a working tree.
    assert not any(s.startswith(("cindermesh_pb", "build")) for s in sources)
    assert any(line.startswith("RUN scripts/setup") for line in stages()["runtime"])


def test_entrypoint_and_user_are_what_compose_and_kubernetes_use() -> None:
    runtime = stages()["runtime"]
    (entrypoint,) = [line for line in runtime if line.startswith("ENTRYPOINT ")]
    command = json.loads(entrypoint.removeprefix("ENTRYPOINT "))
    compose = yaml.safe_load((REPO_ROOT / "deploy/compose/compose.yaml").read_text())
    assert compose["x-cindermesh"]["entrypoint"] == command
    (user,) = [line for line in runtime if line.startswith("USER ")]
    api = list(yaml.safe_load_all((REPO_ROOT / "deploy/kubernetes/api.yaml").read_text()))[1]
    pod = api["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsUser"] == int(user.split()[1])
    assert pod["containers"][0]["command"][:3] == command


def test_the_trial_targets_build_on_the_runtime() -> None:
    found = stages()
    assert set(found) == {"runtime", "ceph", "keystone"}
    assert found["runtime"][0].startswith("FROM python:3.11-slim")
    assert found["ceph"][0] == "FROM runtime AS ceph"
    assert found["keystone"][0] == "FROM runtime AS keystone"
    assert Path(REPO_ROOT / "deploy/ceph/up").is_file()
