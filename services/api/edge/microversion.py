"""Microversions: ``OpenStack-API-Version: volume 3.x``."""

from __future__ import annotations

import re
from dataclasses import dataclass

from cindermesh.errors import InvalidInput, VersionNotSupported

__all__ = ["MAX_VERSION", "MIN_VERSION", "Microversion", "parse_microversion"]

_PATTERN = re.compile(r"^([1-9]\d*)\.([1-9]\d*|0)$")


@dataclass(frozen=True, order=True)
class Microversion:
    major: int
    minor: int

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}"

    def at_least(self, minor: int) -> bool:
        return (self.major, self.minor) >= (3, minor)


MIN_VERSION = Microversion(3, 0)
MAX_VERSION = Microversion(3, 71)


def parse_microversion(header: str | None) -> Microversion:
    """The requested version; 3.0 when absent. Raises for a malformed or unsupported one."""
    if not header:
        return MIN_VERSION
    requested = ""
    for item in header.split(","):
        service, _, value = item.strip().partition(" ")
        if service.lower() == "volume":
            requested = value.strip()
    if not requested:
        return MIN_VERSION
    if requested.lower() == "latest":
        return MAX_VERSION
    match = _PATTERN.match(requested)
    if match is None:
        raise InvalidInput(
            f"API Version String {requested} is of invalid format. Must be of format "
            "MajorNum.MinorNum."
        )
    version = Microversion(int(match.group(1)), int(match.group(2)))
    if not MIN_VERSION <= version <= MAX_VERSION:
        raise VersionNotSupported(
            f"Version {version} is not supported by the API. "
            f"Minimum is {MIN_VERSION} and maximum is {MAX_VERSION}."
        )
    return version
