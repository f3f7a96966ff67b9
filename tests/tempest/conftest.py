"""The ``tempest`` marker: a developer may deselect it (``-m "not tempest"``); CI may not."""

from __future__ import annotations

import os

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "tempest: runs Tempest against cindermesh (slow; CI always runs it)"
    )


def pytest_deselected(items: list[pytest.Item]) -> None:
    if os.environ.get("CI", "").lower() == "true" and any(
        item.get_closest_marker("tempest") for item in items
    ):
        pytest.exit("CI=true: the Tempest test must not be deselected", returncode=4)
