"""``extra_specs_ops.match``: Cinder's ExtraSpecsOpsTestCase
(``cinder/tests/unit/scheduler/test_host_filters.py``) case by case, then every operator on
the values Cinder's backends report (numbers, booleans), where Cinder raises, and words that
are not operators."""

from typing import Any

import pytest

from services.scheduler.extra_specs_ops import OPERATORS, bool_from_string, match


def _cases(test: str, *cases: tuple[Any, str | None, bool]) -> list[Any]:
    return [pytest.param(v, r, m, id=f"{test}[{v!r}|{r!r}]") for v, r, m in cases]


CINDER_CASES = [
    *_cases("test_extra_specs_fails_with_bogus_ops", ("4", "> 2", False)),
    *_cases(
        "test_extra_specs_matches_simple",
        ("1", "1", True),
        ("", "1", False),
        ("3", "1", False),
        ("222", "2", False),
    ),
    *_cases(
        "test_extra_specs_matches_with_op_eq",
        ("123", "= 123", True),
        ("124", "= 123", True),
        ("34", "= 234", False),
        ("34", "=", False),
    ),
    *_cases(
        "test_extra_specs_matches_with_op_not_eq",
        ("2", "<= 10", True),
        ("3", "<= 2", False),
        ("3", ">= 1", True),
        ("2", ">= 3", False),
    ),
    *_cases(
        "test_extra_specs_matches_with_op_seq",
        ("123", "s== 123", True),
        ("1234", "s== 123", False),
        ("1234", "s!= 123", True),
        ("123", "s!= 123", False),
    ),
    *_cases(
        "test_extra_specs_fails_with_op_not_seq",
        ("1000", "s>= 234", False),
        ("1234", "s<= 1000", False),
        ("2", "s< 12", False),
        ("12", "s> 2", False),
    ),
    *_cases(
        "test_extra_specs_matches_with_op_in",
        ("12311321", "<in> 11", True),
        ("12311321", "<in> 12311321", True),
        ("12311321", "<in> 12311321 <in>", True),
        ("12310321", "<in> 11", False),
        ("12310321", "<in> 11 <in>", False),
    ),
    *_cases(
        "test_extra_specs_matches_with_op_is",
        (True, "<is> True", True),
        (False, "<is> False", True),
        (False, "<is> Nonsense", True),
        (True, "<is> False", False),
        (False, "<is> True", False),
    ),
    *_cases(
        "test_extra_specs_matches_with_op_or",
        ("12", "<or> 11 <or> 12", True),
        ("12", "<or> 11 <or> 12 <or>", True),
        ("13", "<or> 11 <or> 12", False),
        ("13", "<or> 11 <or> 12 <or>", False),
    ),
    *_cases(
        "test_extra_specs_matches_none_req",
        (None, None, True),
        ("foo", None, False),
    ),
]


@pytest.mark.parametrize(("value", "requirement", "matches"), CINDER_CASES)
def test_cinder_extra_specs_ops(value: Any, requirement: str | None, matches: bool) -> None:
    assert match(value, requirement) is matches


OUR_CASES = [
    # plain equality: the whole requirement, and a boolean is not the word
    ("file-1", "file-1", True),
    ("file-1", "file-2", False),
    (True, "True", False),
    ("a b", "a b", True),
    # '=' is "at least", on numbers as reported (floats, ints, booleans)
    (100.0, "= 50", True),
    (40, "= 50", False),
    (True, "= 1", True),
    ("abc", "= 5", False),  # not a number
    # numeric operators
    ("50", "== 50.0", True),
    (50, "== 51", False),
    ("50", "!= 50", False),
    (50.5, "!= 50", True),
    ("60", ">= 50", True),
    ("50", ">= 50", True),
    ("60", "<= 50", False),
    ("abc", "== 5", False),
    ("50", ">= 10 60", True),  # only the first word counts
    # string operators: Python's comparison of what was reported with the word
    ("b", "s> a", True),
    ("a", "s> a", False),
    ("a", "s>= a", True),
    ("a", "s< b", True),
    ("b", "s<= a", False),
    ("a", "s== a", True),
    (5, "s== 5", False),  # a number never equals a word
    (5, "s!= 5", True),  # ... so s!= passes it, as in Cinder
    (3.0, "s< b", False),  # Cinder raises (TypeError): no match
    # <in>: substring (or list item)
    ("rbd ceph", "<in> ceph", True),
    ("rbd", "<in> ceph", False),
    (["iSCSI", "iscsi"], "<in> iscsi", True),
    (5.0, "<in> 5", False),  # Cinder raises (TypeError): no match
    # <is>: oslo's bool_from_string on both sides
    (True, "<is> True", True),
    ("True", "<is> true", True),
    ("yes", "<is> True", True),
    (1, "<is> True", True),
    ("0", "<is> False", True),
    ("x", "<is>", False),  # operator without a word
    # <or>: the words after each <or>
    ("iSCSI", "<or> FC <or> iSCSI", True),
    ("NFS", "<or> FC <or> iSCSI", False),
    ("b", "<or> a <xx> b", True),  # the keywords between are not looked at
    ("<xx>", "<or> a <xx> b", False),  # ... nor matched
    (1.0, "<or> 1.0", False),  # compared as words: a number never matches
    ("x", "<or>", False),  # Cinder raises (IndexError): no match
    # None: only a None requirement matches it
    (None, "<is> False", False),
    (None, "= 1", False),
    (None, "x", False),
    # <all-in> is Nova's, not Cinder's: the requirement is compared whole
    ("aes mmx", "<all-in> aes mmx", False),
    ("<all-in> aes", "<all-in> aes", True),
    # empty requirement: plain equality
    ("", "", True),
    ("x", "", False),
]


@pytest.mark.parametrize(("value", "requirement", "matches"), OUR_CASES)
def test_operators(value: Any, requirement: str, matches: bool) -> None:
    assert match(value, requirement) is matches


def test_every_cinder_operator_is_known() -> None:
    assert set(OPERATORS) | {"<or>"} == {
        "=",
        "s==",
        "s!=",
        "s>=",
        "s>",
        "s<=",
        "s<",
        "<in>",
        "<is>",
        "<or>",
        "==",
        "!=",
        ">=",
        "<=",
    }


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        (True, True),
        (False, False),
        ("1", True),
        ("t", True),
        (" TRUE ", True),
        ("on", True),
        ("y", True),
        ("Yes", True),
        ("no", False),
        ("Nonsense", False),
        (1, True),
        (0, False),
        (None, False),
    ],
)
def test_bool_from_string(subject: object, expected: bool) -> None:
    assert bool_from_string(subject) is expected
