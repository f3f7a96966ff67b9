"""Reads a subunit v2 stream (stdin) and prints one JSON object per test: id, status, reason.

Runs in Tempest's venv (``.venv-tempest``), which has python-subunit and testtools; the runner
calls it so that cindermesh's own venv needs neither.
"""

from __future__ import annotations

import json
import re
import sys
from typing import Any

import subunit  # type: ignore[import-not-found]
import testtools  # type: ignore[import-not-found]

#: A traceback's exception line: ``module.Exception: message`` (or just ``Exception``).
EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(: |$)")


def first_line(details: dict[str, Any], status: str) -> str:
    """Why a test did not pass, on one line: a traceback's exception (its last unindented
    line, with the lines after it, e.g. Tempest's ``Details: ...``), or a skip's reason."""
    for key in ("traceback", "reason"):
        content = details.get(key)
        if content is None:
            continue
        raw = b"".join(bytes(chunk) for chunk in content.iter_bytes())
        lines = [line for line in raw.decode("utf-8", "replace").splitlines() if line.strip()]
        if not lines:
            continue
        if key == "reason":
            return lines[0].strip()
        start = len(lines) - 1
        for index, line in enumerate(lines):
            if EXCEPTION_LINE.match(line) and not line.startswith("Details:"):
                start = index
        return " ".join(line.strip() for line in lines[start:])[:500]
    return ""


def main() -> None:
    out = sys.stdout

    def on_test(test: dict[str, Any]) -> None:
        status = test["status"]
        if status in ("exists", "inprogress"):
            return
        record = {"id": test["id"], "status": status, "reason": first_line(test["details"], status)}
        out.write(json.dumps(record) + "\n")

    stream = subunit.ByteStreamToStreamResult(sys.stdin.buffer, non_subunit_name="stdout")
    result = testtools.StreamToDict(on_test)
    result.startTestRun()
    try:
        stream.run(result)
    finally:
        result.stopTestRun()


if __name__ == "__main__":
    main()
