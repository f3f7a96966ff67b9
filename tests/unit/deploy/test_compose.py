"""deploy/compose/compose.yaml: valid by the compose-spec schema, and its services start the
processes the launcher starts locally (``Launcher`` builds the argv; nothing is repeated here),
reachable where the settings say, healthy by their own gRPC health port, after the migration."""

from __future__ import annotations

import json
import re
from collections import Counter
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from cindermesh.cli import build_parser
from cindermesh.gateway_config import render_envoy_config
from cindermesh.launcher import Launcher
from cindermesh.settings import Settings, load_settings
from tests.unit.deploy.envoy_check import envoy_refusal

COMPOSE_DIR = Path(__file__).resolve().parents[3] / "deploy" / "compose"
COMPOSE_FILE = COMPOSE_DIR / "compose.yaml"
CLI = ["python", "-m", "cindermesh.cli"]
#: The profiles a deployment runs with: Ceph in compose, or an external cluster.
PROFILE_SETS = ({"ceph"}, {"external-ceph"}, {"ceph", "keystone"})
_DEFAULT = re.compile(r"\$\{(\w+):?-([^}]*)\}")


def compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text())
    return document


def interpolate(value: str) -> str:
    """Compose's ``${VAR:-default}`` with every variable unset: its default."""
    return _DEFAULT.sub(lambda m: m.group(2), value)


def active(profiles: set[str]) -> dict[str, dict[str, Any]]:
    services: dict[str, dict[str, Any]] = compose()["services"]
    return {
        name: service
        for name, service in services.items()
        if not service.get("profiles") or profiles & set(service["profiles"])
    }


def cindermesh_services(profiles: set[str]) -> dict[str, dict[str, Any]]:
    return {n: s for n, s in active(profiles).items() if s.get("entrypoint") == CLI}


def compose_settings() -> Settings:
    """The settings every cindermesh container loads: its config file and environment."""
    service = compose()["services"]["api-0"]
    environ = {k: interpolate(str(v)) for k, v in service["environment"].items()}
    config = compose()["configs"][service["configs"][0]["source"]]["file"]
    environ["CINDERMESH_CONFIG"] = str(COMPOSE_DIR / config)
    assert service["configs"][0]["target"] == service["environment"]["CINDERMESH_CONFIG"]
    return load_settings(environ)


def launcher_commands(settings: Settings) -> Counter[tuple[str, ...]]:
    """What the launcher starts for these settings, with the image's interpreter."""
    specs = [spec for group in Launcher(settings)._service_specs() for spec in group]
    return Counter(("python", *spec.argv[1:]) for spec in specs)


def test_the_compose_file_is_valid_by_the_compose_spec() -> None:
    schema_file = resources.files("check_jsonschema.builtin_schemas.vendor") / "compose-spec.json"
    schema = json.loads(schema_file.read_text())
    jsonschema.validate(compose(), schema)


def test_an_unknown_key_is_refused_by_the_schema() -> None:
    """The validation above can fail: a misspelt key is an error."""
    schema_file = resources.files("check_jsonschema.builtin_schemas.vendor") / "compose-spec.json"
    document = compose()
    document["services"]["api-0"]["comand"] = ["api"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(document, json.loads(schema_file.read_text()))


@pytest.mark.parametrize("profiles", PROFILE_SETS, ids=lambda p: ",".join(sorted(p)))
def test_services_start_what_the_launcher_starts(profiles: set[str]) -> None:
    settings = compose_settings()
    expected = launcher_commands(settings)
    assert sum(expected.values()) == 2 + 2 + len(settings.backends)  # as the issue asks
    services = cindermesh_services(profiles)
    long_running = {
        n: s for n, s in services.items() if s["command"][0] in ("api", "scheduler", "volume")
    }
    started = Counter((*s["entrypoint"], *s["command"]) for s in long_running.values())
    assert started == expected


def test_every_command_is_one_the_cli_knows() -> None:
    parser = build_parser()
    for name, service in cindermesh_services({"ceph", "external-ceph", "keystone"}).items():
        try:
            parser.parse_args(service["command"])
        except SystemExit:
            pytest.fail(f"{name}: {service['command']} is not a cindermesh command")
        health = service.get("healthcheck", {})
        if not health.get("disable") and "health-check" in health["test"]:
            parser.parse_args(health["test"][health["test"].index("health-check") :])


def _reached_at(settings: Settings, command: list[str]) -> str:
    """The address the settings give the process ``command`` starts."""
    args = build_parser().parse_args(command)
    if args.command == "api":
        return settings.api.address(args.replica)
    if args.command == "scheduler":
        return settings.scheduler.address(args.replica)
    return settings.backend(args.backend).address


def _names(service_name: str, service: dict[str, Any], services: dict[str, Any]) -> set[str]:
    """The DNS names a service is found by: its own and its aliases, or, sharing another's
    network, that one's."""
    mode = service.get("network_mode", "")
    if mode.startswith("service:"):
        other = mode.removeprefix("service:")
        return _names(other, services[other], services)
    aliases = service.get("networks", {}).get("default", {}).get("aliases", [])
    return {service_name, *aliases}


@pytest.mark.parametrize("profiles", PROFILE_SETS, ids=lambda p: ",".join(sorted(p)))
def test_each_service_is_found_and_probed_where_the_settings_say(profiles: set[str]) -> None:
    settings = compose_settings()
    services = active(profiles)
    for name, service in cindermesh_services(profiles).items():
        if service["command"][0] not in ("api", "scheduler", "volume"):
            continue
        host, _, port = _reached_at(settings, service["command"]).rpartition(":")
        assert host in _names(name, service, services), f"{name} is not reachable as {host}"
        assert service["healthcheck"]["test"][-1] == f"127.0.0.1:{port}", name
        assert settings.listen_address(f"{host}:{port}") == f"0.0.0.0:{port}"


def test_everything_waits_for_the_migration() -> None:
    services = cindermesh_services({"ceph", "external-ceph"})
    migrate = services.pop("migrate")
    assert migrate["command"] == ["db", "upgrade"]
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name, service in services.items():
        condition = service["depends_on"]["migrate"]["condition"]
        assert condition == "service_completed_successfully", name


def test_the_gateway_balances_every_api_replica_and_traces_to_jaeger() -> None:
    settings = compose_settings()
    gateway = compose()["services"]["gateway"]
    assert gateway["command"] == ["gateway"]
    replicas = {f"api-{i}" for i in range(settings.api.replicas)}
    assert {n for n, d in gateway["depends_on"].items() if d["condition"] == "service_healthy"} == (
        replicas
    )
    assert f"{settings.gateway.port}:{settings.gateway.port}" in gateway["ports"]
    assert gateway["environment"]["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://jaeger:4317"
    assert settings.db_url.startswith("postgresql+asyncpg://cindermesh:cindermesh@postgres:5432/")


def test_envoy_accepts_the_configuration_the_gateway_renders(tmp_path: Path) -> None:
    """What ``cindermesh gateway`` writes in the gateway container (the api replicas behind
    the DNS name ``api``, traces to Jaeger)."""
    settings = compose_settings()
    text = render_envoy_config(
        settings, compose()["services"]["gateway"]["environment"]["OTEL_EXPORTER_OTLP_ENDPOINT"]
    )
    assert envoy_refusal(text, tmp_path) is None
