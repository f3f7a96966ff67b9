"""The scheduler hints of a create (Cinder's ``OS-SCH-HNT:scheduler_hints``) that placement
uses, shared by the api (which checks them and keeps them on the volume row) and the
scheduler (which reads them from the request, or from the row when it takes a volume over)."""

from __future__ import annotations

import json
from dataclasses import dataclass

__all__ = ["SchedulerHints"]


@dataclass(frozen=True)
class SchedulerHints:
    """The create's ``OS-SCH-HNT:scheduler_hints`` that placement uses (Cinder's
    ``filter_properties['scheduler_hints']``); empty: no such hint."""

    #: Volume ids whose backend the volume must share (SameBackendFilter).
    same_host: tuple[str, ...] = ()
    #: Volume ids whose backends the volume must avoid (DifferentBackendFilter).
    different_host: tuple[str, ...] = ()
    #: JsonFilter's query, as JSON text; empty: none.
    query: str = ""

    def as_json(self) -> dict[str, object]:
        """The hints given, as the create's body named them."""
        given: dict[str, object] = {}
        if self.same_host:
            given["same_host"] = list(self.same_host)
        if self.different_host:
            given["different_host"] = list(self.different_host)
        if self.query:
            given["query"] = self.query
        return given

    def to_text(self) -> str | None:
        """For the volume row: JSON, or None without hints."""
        given = self.as_json()
        return json.dumps(given, sort_keys=True) if given else None

    @classmethod
    def from_text(cls, text: str | None) -> SchedulerHints:
        if not text:
            return cls()
        given = json.loads(text)
        return cls(
            same_host=tuple(given.get("same_host", ())),
            different_host=tuple(given.get("different_host", ())),
            query=str(given.get("query", "")),
        )
