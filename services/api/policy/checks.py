"""oslo.policy's check language, the part Cinder's defaults (and sane overrides) use.

A check string is checks joined by ``and``, ``or``, ``not`` and parentheses (``not`` binds
tightest, then ``and``, then ``or``; the words in any case). A check is:

* ``@`` (always) or ``!`` (never); an empty string is ``@``, as in oslo.policy;
* ``role:<name>``: the caller has the role (case-insensitive);
* ``rule:<name>``: the named rule of the table passes;
* ``<credential>:<value>``: the caller's credential equals the value, e.g. ``is_admin:True``,
  ``project_id:%(project_id)s`` (``%(key)s`` is taken from the target: the resource's
  ``project_id`` / ``user_id``; a key the target lacks fails the check), ``system_scope:all``.
  A literal on the left (``'True':%(is_public)s``) is compared with the value instead.

Unlike oslo.policy, which logs a malformed rule and denies everything, a syntax error here is
an error (:class:`PolicySyntaxError`): the api refuses to start with it.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

__all__ = [
    "And",
    "Check",
    "Credentials",
    "Generic",
    "Not",
    "Or",
    "PolicySyntaxError",
    "Role",
    "RuleRef",
    "Static",
    "parse",
    "rule_references",
]

#: ``%`` in a value only as ``%(key)s``.
_INTERPOLATION = re.compile(r"%\((\w+)\)s|%")


class PolicySyntaxError(ValueError):
    """A check string that is not oslo.policy's language."""


#: What a check may ask about the caller: a mapping of credential name to value
#: (``roles`` is a set of lower-case names).
Credentials = Mapping[str, object]
#: Resolves ``rule:<name>`` to its check (None: no such rule).
Resolver = Callable[[str], "Check | None"]


class Check:
    def __call__(self, target: Mapping[str, object], creds: Credentials, rules: Resolver) -> bool:
        raise NotImplementedError


@dataclass(frozen=True)
class Static(Check):
    """``@`` or ``!``."""

    result: bool

    def __call__(self, target: Mapping[str, object], creds: Credentials, rules: Resolver) -> bool:
        return self.result


@dataclass(frozen=True)
class Role(Check):
    match: str

    def __call__(self, target: Mapping[str, object], creds: Credentials, rules: Resolver) -> bool:
        wanted = _interpolate(self.match, target)
        roles = creds.get("roles")
        if wanted is None or not isinstance(roles, (set, frozenset)):
            return False
        return wanted.lower() in roles


@dataclass(frozen=True)
class RuleRef(Check):
    name: str

    def __call__(self, target: Mapping[str, object], creds: Credentials, rules: Resolver) -> bool:
        check = rules(self.name)
        return check is not None and check(target, creds, rules)


@dataclass(frozen=True)
class Generic(Check):
    """``<credential>:<value>``, or ``<literal>:<value>``."""

    kind: str
    match: str

    def __call__(self, target: Mapping[str, object], creds: Credentials, rules: Resolver) -> bool:
        wanted = _interpolate(self.match, target)
        if wanted is None:
            return False
        try:
            return wanted == str(ast.literal_eval(self.kind))
        except (ValueError, SyntaxError):
            pass
        value: object = creds
        for part in self.kind.split("."):
            if not isinstance(value, Mapping) or value.get(part) is None:
                return False
            value = value[part]
        if isinstance(value, (list, tuple, set, frozenset)):
            return wanted in {str(v) for v in value}
        return wanted == str(value)


@dataclass(frozen=True)
class Not(Check):
    check: Check

    def __call__(self, target: Mapping[str, object], creds: Credentials, rules: Resolver) -> bool:
        return not self.check(target, creds, rules)


@dataclass(frozen=True)
class And(Check):
    checks: tuple[Check, ...]

    def __call__(self, target: Mapping[str, object], creds: Credentials, rules: Resolver) -> bool:
        return all(check(target, creds, rules) for check in self.checks)


@dataclass(frozen=True)
class Or(Check):
    checks: tuple[Check, ...]

    def __call__(self, target: Mapping[str, object], creds: Credentials, rules: Resolver) -> bool:
        return any(check(target, creds, rules) for check in self.checks)


def _interpolate(match: str, target: Mapping[str, object]) -> str | None:
    """The value with ``%(key)s`` from the target; None when the target lacks a key."""
    missing = False

    def value(found: re.Match[str]) -> str:
        nonlocal missing
        key = found.group(1)
        if key not in target:
            missing = True
            return ""
        return str(target[key])

    result = _INTERPOLATION.sub(value, match)
    return None if missing else result


def parse(text: str) -> Check:
    """The check a check string means; PolicySyntaxError if it is not one."""
    tokens = list(_tokens(text))
    if not tokens:
        return Static(True)
    parser = _Parser(text, tokens)
    check = parser.expression()
    if parser.position != len(tokens):
        raise parser.error(f"unexpected {tokens[parser.position]!r}")
    return check


def rule_references(check: Check) -> Iterator[str]:
    """The names of the rules a check refers to (``rule:<name>``)."""
    if isinstance(check, RuleRef):
        yield check.name
    elif isinstance(check, Not):
        yield from rule_references(check.check)
    elif isinstance(check, (And, Or)):
        for part in check.checks:
            yield from rule_references(part)


def _tokens(text: str) -> Iterator[str]:
    """Words, with the parentheses around them as tokens of their own (oslo.policy's way)."""
    for word in text.split():
        core = word.lstrip("(")
        yield from "(" * (len(word) - len(core))
        stripped = core.rstrip(")")
        if stripped:
            yield stripped
        yield from ")" * (len(core) - len(stripped))


class _Parser:
    def __init__(self, text: str, tokens: list[str]) -> None:
        self.text = text
        self.tokens = tokens
        self.position = 0

    def error(self, what: str) -> PolicySyntaxError:
        return PolicySyntaxError(f"invalid check string {self.text!r}: {what}")

    def _peek(self) -> str | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def _take(self) -> str:
        token = self._peek()
        if token is None:
            raise self.error("unexpected end")
        self.position += 1
        return token

    def _keyword(self, word: str) -> bool:
        token = self._peek()
        if token is not None and token.lower() == word:
            self.position += 1
            return True
        return False

    def expression(self) -> Check:
        checks = [self._conjunction()]
        while self._keyword("or"):
            checks.append(self._conjunction())
        return checks[0] if len(checks) == 1 else Or(tuple(checks))

    def _conjunction(self) -> Check:
        checks = [self._negation()]
        while self._keyword("and"):
            checks.append(self._negation())
        return checks[0] if len(checks) == 1 else And(tuple(checks))

    def _negation(self) -> Check:
        if self._keyword("not"):
            return Not(self._negation())
        return self._atom()

    def _atom(self) -> Check:
        token = self._take()
        if token == "(":
            check = self.expression()
            if self._take() != ")":
                raise self.error("')' expected")
            return check
        if token.lower() in ("and", "or", "not") or token == ")":
            raise self.error(f"a check expected, not {token!r}")
        return self._check(token)

    def _check(self, token: str) -> Check:
        if token == "@":
            return Static(True)
        if token == "!":
            return Static(False)
        kind, sep, match = token.partition(":")
        if not sep or not kind or not match:
            raise self.error(f"{token!r} is not a check (kind:value, @ or !)")
        if any(found.group(1) is None for found in _INTERPOLATION.finditer(match)):
            raise self.error(f"{token!r}: '%' only as %(key)s")
        if kind == "role":
            return Role(match)
        if kind == "rule":
            return RuleRef(match)
        return Generic(kind, match)
