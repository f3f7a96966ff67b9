"""deploy/kubernetes: every manifest valid by Kubernetes' own schemas (kubernetes-validate's
bundled copy, offline, strict: an unknown field is an error), listed in its kustomization, the
generated ConfigMaps as the generator makes them, Envoy's configuration accepted by Envoy
itself, and the workloads running the launcher's commands with probes on their own ports."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from cindermesh.build_protos import DESCRIPTOR_SET
from cindermesh.launcher import Launcher, envoy_command
from cindermesh.settings import Settings
from deploy.kubernetes import render
from tests.unit.deploy.envoy_check import envoy_refusal

K8S_DIR = render.HERE
#: The Kubernetes release the manifests are checked against (the newest kubernetes-validate
#: bundles; native gRPC probes are GA since 1.27).
KUBERNETES_VERSION = "1.37.0"
MANIFESTS = sorted(
    p
    for p in [*K8S_DIR.glob("*.yaml"), *K8S_DIR.glob("extras/*.yaml")]
    if p.name != "kustomization.yaml"
)
WORKLOAD_KINDS = ("Deployment", "StatefulSet", "Job")


def documents(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


def all_documents() -> list[dict[str, Any]]:
    return [d for path in MANIFESTS for d in documents(path)]


def workload(name: str) -> dict[str, Any]:
    for document in all_documents():
        if document["kind"] in WORKLOAD_KINDS and document["metadata"]["name"] == name:
            return document
    raise AssertionError(f"no workload {name}")


def container(name: str) -> dict[str, Any]:
    containers: list[dict[str, Any]] = workload(name)["spec"]["template"]["spec"]["containers"]
    return containers[0]


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: str(p.relative_to(K8S_DIR)))
def test_manifest_is_valid_by_the_kubernetes_schema(path: Path) -> None:
    for document in documents(path):
        kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)


def test_an_unknown_field_is_refused() -> None:
    """The validation above can fail: a misspelt field of a probe is an error."""
    document = documents(K8S_DIR / "api.yaml")[1]
    document["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["grcp"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize("directory", [K8S_DIR, K8S_DIR / "extras"], ids=["core", "extras"])
def test_the_kustomization_lists_every_manifest(directory: Path) -> None:
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
    files = {p.name for p in directory.glob("*.yaml") if p.name != "kustomization.yaml"}
    assert sorted(kustomization["resources"]) == sorted(files)


def test_the_generated_config_maps_are_what_the_generator_makes() -> None:
    for path, text in render.rendered().items():
        assert path.read_text() == text, f"{path} is stale: run python -m deploy.kubernetes.render"


def test_the_config_map_holds_the_config_file() -> None:
    (config_map,) = documents(K8S_DIR / "configmap-config.yaml")
    assert config_map["data"]["cindermesh.toml"] == render.CONFIG_FILE.read_text()


def test_envoy_accepts_its_configuration(tmp_path: Path) -> None:
    (config_map,) = documents(K8S_DIR / "configmap-envoy.yaml")
    text = config_map["data"]["envoy.yaml"]
    assert render.IMAGE_DESCRIPTOR_SET in text
    # Here the descriptor set is the repository's, not the image's.
    local = text.replace(render.IMAGE_DESCRIPTOR_SET, str(DESCRIPTOR_SET.resolve()))
    assert envoy_refusal(local, tmp_path) is None


def _grpc_port(settings: Settings, command: list[str]) -> int:
    """The port of the address the settings give the process ``command`` starts."""
    service = command[3]
    if service == "api":
        address = settings.api.address(int(command[5]))
    elif service == "scheduler":
        address = settings.scheduler.address(int(command[5]))
    else:
        address = settings.backend(command[5]).address
    return int(address.rpartition(":")[2])


def test_workloads_run_the_launchers_commands() -> None:
    settings = render.kubernetes_settings()
    specs = [spec for group in Launcher(settings)._service_specs() for spec in group]
    # Every pod of a Deployment runs the same command: replica 0's, on its own host.
    expected = {
        ("python", *s.argv[1:]) for s in specs if not s.name.startswith(("api-", "scheduler-"))
    }
    running = {
        tuple(container(d["metadata"]["name"])["command"])
        for d in all_documents()
        if d["kind"] in ("Deployment", "StatefulSet")
        and d["metadata"]["name"] not in ("gateway", "postgres", "jaeger")
    }
    assert running == expected
    assert workload("api")["spec"]["replicas"] == settings.api.replicas
    assert workload("scheduler")["spec"]["replicas"] == settings.scheduler.replicas
    for backend in settings.backends:
        assert workload(f"volume-{backend.name}")["spec"]["replicas"] == 1


@pytest.mark.parametrize("name", ["api", "scheduler", "volume-file-1", "volume-rbd-1"])
def test_probes_ask_the_grpc_health_service_on_the_services_port(name: str) -> None:
    settings = render.kubernetes_settings()
    spec = container(name)
    port = _grpc_port(settings, spec["command"])
    assert spec["ports"] == [{"name": "grpc", "containerPort": port}]
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert spec[probe]["grpc"] == {"port": port, "service": ""}, probe
    (service,) = [d for d in documents(K8S_DIR / f"{name}.yaml") if d["kind"] == "Service"]
    assert service["metadata"]["name"] == (
        settings.backend(name.removeprefix("volume-")).host
        if name.startswith("volume-")
        else getattr(settings, name).host
    )
    assert service["spec"]["ports"][0]["port"] == port
    assert service["spec"]["clusterIP"] == "None"  # its name resolves to each pod


def test_the_gateway_runs_envoy_as_the_launcher_does() -> None:
    settings = render.kubernetes_settings()
    spec = container("gateway")
    expected = envoy_command(Path("/etc/envoy/envoy.yaml"), settings)
    assert spec["command"] == ["envoy", *expected[1:]]
    assert spec["volumeMounts"] == [{"name": "envoy", "mountPath": "/etc/envoy", "readOnly": True}]


def test_the_migration_job_upgrades_the_schema() -> None:
    job = workload("cindermesh-migrate")
    assert container("cindermesh-migrate")["command"][3:] == ["db", "upgrade"]
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "OnFailure"


def test_every_container_has_requests_and_limits() -> None:
    for document in all_documents():
        if document["kind"] not in WORKLOAD_KINDS:
            continue
        for spec in document["spec"]["template"]["spec"]["containers"]:
            resources = spec["resources"]
            assert resources["requests"] and resources["limits"]["memory"], document["metadata"]
