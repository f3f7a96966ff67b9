"""Microversions: ``OpenStack-API-Version: volume 3.x``.

The advertised maximum is 3.71, Cinder's, and it is honest: every microversion-gated behaviour
of the resources cindermesh serves follows the requested version as Cinder's does (volume view
fields 3.13/3.21/3.48/3.61/3.63/3.64/3.65/3.69, metadata ETag 3.15, force delete 3.23, list
filters 3.2/3.10/3.33/3.60/3.65, ``with_count`` 3.45, summary 3.12/3.36, project-less URLs
3.67, snapshot view fields 3.14/3.41/3.65, snapshot metadata filter 3.22, snapshot ``force``
3.66, attachments 3.27 with ``os-complete`` 3.44 and ``mode`` 3.54, types and quotas as their
packages say).

What cindermesh does not serve yet (backups) it serves at no microversion, 3.0 included, so a
lower maximum would not send any client to a served path instead; it would only take served
behaviour away (``with_count``, ``shared_targets``, ``volume_type_id``, ``consumes_quota``,
the summary's metadata, Nova's attachments at 3.44). A new gated behaviour on a served
resource that is not implemented lowers MAX_VERSION below its microversion.
"""

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
