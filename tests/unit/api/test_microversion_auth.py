from __future__ import annotations

import pytest

from cindermesh.errors import InvalidInput, MalformedUrl, NotAuthenticated, VersionNotSupported
from services.api.edge.auth import authenticate, check_url_project
from services.api.edge.microversion import (
    MAX_VERSION,
    MIN_VERSION,
    Microversion,
    parse_microversion,
)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, MIN_VERSION),
        ("", MIN_VERSION),
        ("volume 3.0", Microversion(3, 0)),
        ("volume 3.71", Microversion(3, 71)),
        ("volume latest", MAX_VERSION),
        ("compute 2.1, volume 3.45", Microversion(3, 45)),
    ],
)
def test_parse(header: str | None, expected: Microversion) -> None:
    assert parse_microversion(header) == expected


def test_out_of_range_is_cinders_406_message() -> None:
    with pytest.raises(VersionNotSupported) as raised:
        parse_microversion("volume 3.999")
    assert raised.value.message == (
        "Version 3.999 is not supported by the API. Minimum is 3.0 and maximum is 3.71."
    )


@pytest.mark.parametrize("bad", ["3.x", "3", "3.01", "v3.1"])
def test_malformed(bad: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        parse_microversion(f"volume {bad}")
    assert raised.value.message == (
        f"API Version String {bad} is of invalid format. Must be of format MajorNum.MinorNum."
    )


def test_token_and_admins() -> None:
    caller = authenticate("demo:p1", ("admin",))
    assert (caller.user_id, caller.project_id, caller.is_admin) == ("demo", "p1", False)
    assert authenticate("admin:p1", ("admin",)).is_admin


def test_no_token() -> None:
    with pytest.raises(NotAuthenticated):
        authenticate(None, ("admin",))


def test_url_project_must_be_the_tokens() -> None:
    caller = authenticate("demo:p1", ())
    check_url_project(caller, "p1")
    check_url_project(caller, "")
    with pytest.raises(MalformedUrl) as raised:
        check_url_project(caller, "p2")
    assert raised.value.message == "Malformed request url"
