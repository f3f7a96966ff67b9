"""Golden responses of the real Cinder 29.0.0 (tests/golden/) and shape comparison: the same
keys, JSON types and nulls, recursively; values (ids, times, request ids) are not compared."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

GOLDEN_DIR = Path(__file__).resolve().parents[1] / "golden"


def golden(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((GOLDEN_DIR / f"{name}.json").read_text())
    return loaded


def _kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    return type(value).__name__


def shape_differences(ours: object, theirs: object, path: str = "$") -> list[str]:
    if _kind(ours) != _kind(theirs):
        return [f"{path}: {_kind(ours)} here, {_kind(theirs)} in Cinder"]
    if isinstance(ours, dict) and isinstance(theirs, dict):
        found = [f"{path}.{k}: missing" for k in sorted(set(theirs) - set(ours))]
        found += [f"{path}.{k}: not in Cinder" for k in sorted(set(ours) - set(theirs))]
        for key in sorted(set(ours) & set(theirs)):
            found += shape_differences(ours[key], theirs[key], f"{path}.{key}")
        return found
    if isinstance(ours, list) and isinstance(theirs, list) and ours and theirs:
        matched = theirs if len(ours) == len(theirs) else [theirs[0]] * len(ours)
        pairs = zip(ours, matched, strict=True)
        return [d for a, b in pairs for d in shape_differences(a, b, f"{path}[]")]
    return []


def assert_shape(ours: object, golden_name: str) -> None:
    differences = shape_differences(ours, golden(golden_name)["body"])
    assert not differences, "\n".join(differences)


def assert_cinder_headers(headers: Any, golden_name: str) -> None:
    """The Cinder headers of the golden response are present (values of ids aside)."""
    expected = golden(golden_name)["headers"]
    for name in ("openstack-api-version", "vary"):
        if name in expected:
            assert headers.get(name) == expected[name], name
    assert headers["x-openstack-request-id"].startswith("req-")
