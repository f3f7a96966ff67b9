"""Writes the two generated ConfigMaps of deploy/kubernetes from their sources.

    python -m deploy.kubernetes.render           # rewrite them
    python -m deploy.kubernetes.render --check   # exit 1 if a committed one is stale

* ``configmap-config.yaml`` (``cindermesh-config``): ``cindermesh.toml`` as it is;
* ``configmap-envoy.yaml`` (``cindermesh-envoy``): Envoy's configuration, rendered by
  ``cindermesh.gateway_config`` (the gateway's own template, as ``cindermesh gateway`` renders
  it) for those settings, exporting traces to :data:`OTLP_ENDPOINT`, with the descriptor set at
  its path in the image (:data:`IMAGE_DESCRIPTOR_SET`).

Run from the repository root with cindermesh installed (``.venv/bin/python``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from cindermesh.build_protos import DESCRIPTOR_SET
from cindermesh.gateway_config import render_envoy_config
from cindermesh.settings import Settings, load_settings

__all__ = [
    "CONFIG_FILE",
    "IMAGE_DESCRIPTOR_SET",
    "OTLP_ENDPOINT",
    "config_map",
    "kubernetes_settings",
    "main",
    "rendered",
]

HERE = Path(__file__).resolve().parent
CONFIG_FILE = HERE / "cindermesh.toml"
#: Where deploy/Dockerfile generates the descriptor set.
IMAGE_DESCRIPTOR_SET = "/opt/cindermesh/build/cindermesh.pb"
#: The pods' OTEL_EXPORTER_OTLP_ENDPOINT (extras/jaeger.yaml).
OTLP_ENDPOINT = "http://jaeger:4317"
NAMESPACE = "cindermesh"


def kubernetes_settings() -> Settings:
    """The settings every pod loads (its database URL aside, which Envoy does not need)."""
    return load_settings({"CINDERMESH_CONFIG": str(CONFIG_FILE)})


def _block(text: str) -> str:
    lines = text.rstrip("\n").split("\n")
    return "\n".join(f"    {line}" if line else "" for line in lines)


def config_map(name: str, key: str, text: str, source: str) -> str:
    """A ConfigMap holding ``text`` under ``key``, as YAML."""
    return (
        f"# Generated from {source} by `python -m deploy.kubernetes.render`: do not edit.\n"
        "apiVersion: v1\n"
        "kind: ConfigMap\n"
        "metadata:\n"
        f"  name: {name}\n"
        f"  namespace: {NAMESPACE}\n"
        "  labels:\n"
        "    app.kubernetes.io/part-of: cindermesh\n"
        "data:\n"
        f"  {key}: |\n"
        f"{_block(text)}\n"
    )


def envoy_config(settings: Settings) -> str:
    """Envoy's configuration for ``settings``, naming the image's descriptor set."""
    text = render_envoy_config(settings, OTLP_ENDPOINT)
    local = json.dumps(str(DESCRIPTOR_SET.resolve()))
    if local not in text:
        raise ValueError(f"the rendered configuration does not name {local}")
    return text.replace(local, json.dumps(IMAGE_DESCRIPTOR_SET))


def rendered() -> dict[Path, str]:
    """Each generated file and the text it should have."""
    return {
        HERE / "configmap-config.yaml": config_map(
            "cindermesh-config",
            "cindermesh.toml",
            CONFIG_FILE.read_text(),
            "deploy/kubernetes/cindermesh.toml",
        ),
        HERE / "configmap-envoy.yaml": config_map(
            "cindermesh-envoy",
            "envoy.yaml",
            envoy_config(kubernetes_settings()),
            "deploy/envoy/envoy.yaml.tmpl and deploy/kubernetes/cindermesh.toml",
        ),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploy.kubernetes.render")
    parser.add_argument("--check", action="store_true", help="only say whether they are stale")
    args = parser.parse_args(argv)
    stale = [path for path, text in rendered().items() if not _same(path, text)]
    if args.check:
        for path in stale:
            print(f"{path} is stale: run python -m deploy.kubernetes.render", file=sys.stderr)
        return 1 if stale else 0
    for path, text in rendered().items():
        path.write_text(text)
        print(f"wrote {path}")
    return 0


def _same(path: Path, text: str) -> bool:
    return path.is_file() and path.read_text() == text


if __name__ == "__main__":
    sys.exit(main())
