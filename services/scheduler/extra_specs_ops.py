"""Cinder's ``extra_specs_ops.match``: one volume-type extra spec against one capability.

The requirement's first word picks the operator:

``=`` (at least), ``==``, ``!=``, ``>=``, ``<=``
    numbers: both sides through ``float()``; a side that is not a number does not match.
``s==``, ``s!=``, ``s<``, ``s<=``, ``s>``, ``s>=``
    Python's comparison of the value as reported with the word (a number never equals a word,
    so ``s!=`` passes it).
``<in>``
    the word is a substring of the value (an item, for a list value).
``<is>``
    both sides read as booleans the way ``oslo_utils.strutils.bool_from_string`` reads them
    (``1 t true on y yes``, any case, are true; anything else is false).
``<or> a <or> b ...``
    the value equals one of the words (every other word after the first ``<or>``; the words
    in between are not looked at).

Only the first word after an operator counts (``>= 10 60`` is ``>= 10``); an operator with no
word does not match. Without an operator as first word the requirement is compared whole with
``==`` (so a boolean capability never equals the word ``True``: that takes ``<is> True``). A
requirement of ``None`` matches only a value of ``None``; otherwise ``None`` never matches.

Not an operator here, as in Cinder: ``<all-in>`` (Nova's), so ``<all-in> a b`` is compared
whole like any other word.

Where Cinder raises out of the scheduler (``<in>`` on a number, ``s<`` between a number and a
word, ``<or>`` with no word), the spec does not match instead.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

__all__ = ["OPERATORS", "bool_from_string", "match"]

_TRUE_STRINGS = frozenset(("1", "t", "true", "on", "y", "yes"))


def bool_from_string(subject: object) -> bool:
    """``oslo_utils.strutils.bool_from_string(subject)``, not strict, default False."""
    if isinstance(subject, bool):
        return subject
    return str(subject).strip().lower() in _TRUE_STRINGS


def _at_least(value: object, word: str) -> bool:
    return float(value) >= float(word)  # type: ignore[arg-type]


def _numeric(compare: Callable[[float, float], bool]) -> Callable[[object, str], bool]:
    def check(value: object, word: str) -> bool:
        return compare(float(value), float(word))  # type: ignore[arg-type]

    return check


def _contains(value: object, word: str) -> bool:
    return word in value  # type: ignore[operator]


def _is(value: object, word: str) -> bool:
    return bool_from_string(value) is bool_from_string(word)


def _strings(compare: Callable[[Any, Any], Any]) -> Callable[[object, str], bool]:
    def check(value: object, word: str) -> bool:
        return bool(compare(value, word))

    return check


#: Every operator but ``<or>``, by its word.
OPERATORS: dict[str, Callable[[object, str], bool]] = {
    "=": _at_least,
    "<in>": _contains,
    "<is>": _is,
    "==": _numeric(operator.eq),
    "!=": _numeric(operator.ne),
    ">=": _numeric(operator.ge),
    "<=": _numeric(operator.le),
    "s==": _strings(operator.eq),
    "s!=": _strings(operator.ne),
    "s<": _strings(operator.lt),
    "s<=": _strings(operator.le),
    "s>": _strings(operator.gt),
    "s>=": _strings(operator.ge),
}

_OR = "<or>"


def match(value: object, requirement: str | None) -> bool:
    """Whether the capability ``value`` satisfies the extra spec ``requirement``."""
    if requirement is None:
        return value is None
    words = requirement.split()
    op = words[0] if words else None
    method = OPERATORS.get(op) if op is not None else None
    if op != _OR and method is None:
        return value == requirement
    if value is None:
        return False
    if op == _OR:
        # "<or> a <or> b": a, b. Cinder pops a word it never finds after a bare "<or>".
        return any(word == value for word in words[1::2])
    assert method is not None
    if len(words) < 2:
        return False
    try:
        return method(value, words[1])
    except (ValueError, TypeError):
        return False
