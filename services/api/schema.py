"""Cinder's request-schema rules, once: the JSON values the api validates, the checks of its
``parameter_types`` and jsonschema (Draft 4) keywords, and their messages.

Request fields that Cinder accepts in several JSON types arrive as ``google.protobuf.Value``s
(or a whole body as a ``Struct``); the api validates them itself so that its messages are
Cinder's: jsonschema's, wrapped as ``Invalid input for field/attribute <field>. Value:
<value>. <message>`` (``invalid_field``), or Cinder's ``InvalidInput`` text, ``Invalid input
received: <reason>`` (``invalid_input``). Each resource's body schema (volume create and
update, type create, quota set) lives with its resource and is written with these checks.

Text that Cinder stores as sent is refused when it holds control characters (NUL, C0, DEL,
C1): ``NO_CONTROL_PATTERN``, and ``DESCRIPTION_PATTERN`` which keeps tabs and line breaks;
metadata and extra-spec keys must match Cinder's key regex as a whole (its ``$`` also let a
trailing line break through). Messages that show a huge value are shortened
(``bounded_messages``, ``services.api.edge.errors.shorten``).
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Callable, Collection, Iterator, Mapping
from typing import ParamSpec, TypeAlias, TypeVar

from google.protobuf import struct_pb2
from google.protobuf.json_format import MessageToDict

from cindermesh.errors import InvalidInput
from services.api.edge.errors import MAX_MESSAGE_CHARS, shorten

__all__ = [
    "BOOLEAN_ENUM",
    "DESCRIPTION_PATTERN",
    "MAX_NAME_LENGTH",
    "METADATA_KEY_PATTERN",
    "NO_CONTROL_PATTERN",
    "UUID_LIKE",
    "JsonValue",
    "additional_properties",
    "bool_from_string",
    "bounded_messages",
    "check_boolean",
    "check_name_skip_spaces",
    "check_no_additional",
    "check_non_empty",
    "check_optional_boolean",
    "check_pattern",
    "check_present",
    "check_string",
    "check_string_length",
    "check_string_map",
    "check_type",
    "check_uuid",
    "invalid_field",
    "invalid_input",
    "is_true",
    "matches",
    "not_of_type",
    "not_valid_under_any",
    "object_to_python",
    "parse_bool_param",
    "printable_pattern",
    "require_object",
    "required_property",
    "strict_bool",
    "to_python",
    "validate_integer",
]

P = ParamSpec("P")
T = TypeVar("T")

JsonValue: TypeAlias = "bool | int | float | str | list[JsonValue] | dict[str, JsonValue] | None"

#: Cinder's ``parameter_types.name`` (and most strings'): at most 255 characters.
MAX_NAME_LENGTH = 255
METADATA_KEY_PATTERN = "^[a-zA-Z0-9-_:. /]{1,255}$"
#: No control character at all: names, metadata and extra-spec values.
NO_CONTROL_PATTERN = r"^[^\x00-\x1f\x7f-\x9f]*$"
#: No control character but tab, line feed and carriage return: volume descriptions.
DESCRIPTION_PATTERN = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]*$"
#: Cinder's ``uuidutils.is_uuid_like`` shape (dashes optional).
UUID_LIKE = re.compile(r"^[0-9a-fA-F]{8}-?([0-9a-fA-F]{4}-?){3}[0-9a-fA-F]{12}$")
#: oslo's ``strutils`` boolean strings (compared lower-cased).
TRUE_STRINGS = frozenset({"1", "t", "true", "on", "y", "yes"})
FALSE_STRINGS = frozenset({"0", "f", "false", "off", "n", "no"})
#: Cinder's ``parameter_types.boolean`` enum, in its order (its message lists them).
BOOLEAN_ENUM: tuple[bool | str, ...] = (
    True, "True", "TRUE", "true", "1", "ON", "On", "on", "YES", "Yes", "yes", "y", "t",
    False, "False", "FALSE", "false", "0", "OFF", "Off", "off", "NO", "No", "no", "n", "f",
)  # fmt: skip


# --- JSON values ---------------------------------------------------------------------------


def _normalise(value: object) -> JsonValue:
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**63:
        return int(value)
    if isinstance(value, list):
        return [_normalise(v) for v in value]
    if isinstance(value, dict):
        # A protobuf Struct does not keep the JSON's key order; sorted keys are deterministic
        # (and match Cinder's messages whenever the client sent them sorted).
        return {str(k): _normalise(value[k]) for k in sorted(value)}
    assert value is None or isinstance(value, bool | int | float | str)
    return value


def to_python(value: struct_pb2.Value) -> JsonValue:
    """The JSON value as Python; integral numbers become ints (JSON has no 1.0 vs 1)."""
    if value.WhichOneof("kind") is None:
        return None
    return _normalise(MessageToDict(value))


def object_to_python(body: struct_pb2.Struct) -> dict[str, JsonValue]:
    """A whole JSON object body as Python, as ``to_python``."""
    value = _normalise(MessageToDict(body))
    assert isinstance(value, dict)
    return value


# --- messages ------------------------------------------------------------------------------


def invalid_field(field: str, value: JsonValue, message: str) -> InvalidInput:
    """A jsonschema error at ``field``, as Cinder's validator wraps it."""
    return InvalidInput(f"Invalid input for field/attribute {field}. Value: {value}. {message}")


def invalid_input(reason: str) -> InvalidInput:
    """Cinder's ``exception.InvalidInput``."""
    return InvalidInput(f"Invalid input received: {reason}")


def not_of_type(value: JsonValue, types: tuple[str, ...]) -> str:
    return f"{value!r} is not of type {', '.join(repr(t) for t in types)}"


def not_valid_under_any(value: JsonValue) -> str:
    """jsonschema's ``oneOf``/``anyOf`` message."""
    return f"{value!r} is not valid under any of the given schemas"


def required_property(key: str) -> str:
    return f"'{key}' is a required property"


def additional_properties(keys: Collection[str]) -> str:
    listed = ", ".join(repr(k) for k in sorted(keys))
    verb = "was" if len(keys) == 1 else "were"
    return f"Additional properties are not allowed ({listed} {verb} unexpected)"


def bounded_messages(check: Callable[P, T]) -> Callable[P, T]:
    """Shortens the message of an InvalidInput ``check`` raises (it may show a huge value)."""

    @functools.wraps(check)
    def bounded(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return check(*args, **kwargs)
        except InvalidInput as error:
            if len(error.message) > MAX_MESSAGE_CHARS:
                error.message = shorten(error.message)
                error.args = (error.message,)
            raise

    return bounded


# --- jsonschema keywords -------------------------------------------------------------------


def _type_name_matches(value: JsonValue, types: tuple[str, ...]) -> bool:
    checks: Mapping[str, bool] = {
        "null": value is None,
        "boolean": isinstance(value, bool),
        "integer": isinstance(value, int) and not isinstance(value, bool),
        "number": isinstance(value, int | float) and not isinstance(value, bool),
        "string": isinstance(value, str),
        "object": isinstance(value, dict),
        "array": isinstance(value, list),
    }
    return any(checks[t] for t in types)


def check_type(name: str, value: JsonValue, types: tuple[str, ...]) -> None:
    """``type``."""
    if not _type_name_matches(value, types):
        raise invalid_field(name, value, not_of_type(value, types))


def require_object(name: str, value: JsonValue) -> dict[str, JsonValue]:
    """``type: object``; the object."""
    check_type(name, value, ("object",))
    assert isinstance(value, dict)
    return value


def check_present(present: bool, key: str) -> None:
    """``required`` of a body's top-level key."""
    if not present:
        raise InvalidInput(required_property(key))


def check_no_additional(
    name: str | None, value: dict[str, JsonValue], allowed: Collection[str]
) -> None:
    """``additionalProperties: false``; ``name`` None for the body itself."""
    extra = [k for k in value if k not in allowed]
    if not extra:
        return
    if name is None:
        raise InvalidInput(additional_properties(extra))
    raise invalid_field(name, value, additional_properties(extra))


def check_non_empty(name: str, value: JsonValue) -> None:
    """``minLength: 1`` of a string, ``minProperties: 1`` of an object."""
    if isinstance(value, str | dict) and not value:
        raise invalid_field(name, value, f"{value!r} should be non-empty")


def check_max_length(name: str, value: JsonValue, limit: int = MAX_NAME_LENGTH) -> None:
    """``maxLength``."""
    if isinstance(value, str) and len(value) > limit:
        raise invalid_field(name, value, f"{value!r} is too long")


@functools.cache
def _whole(pattern: str) -> re.Pattern[str]:
    """A ``^...$`` pattern matched against the whole text (``$`` alone allows a final "\\n")."""
    return re.compile(pattern.removeprefix("^").removesuffix("$"))


def matches(pattern: str, text: str) -> bool:
    return _whole(pattern).fullmatch(text) is not None


def check_pattern(name: str, value: JsonValue, pattern: str) -> None:
    """``pattern`` (strings only)."""
    if isinstance(value, str) and not matches(pattern, value):
        raise invalid_field(name, value, f"{value!r} does not match {pattern!r}")


def check_uuid(name: str, value: JsonValue) -> str:
    """``parameter_types.uuid``: a string in a UUID's form (``format: uuid``)."""
    check_type(name, value, ("string",))
    assert isinstance(value, str)
    if UUID_LIKE.match(value) is None:
        raise invalid_field(name, value, f"{value!r} is not a 'uuid'")
    return value


def check_string(
    name: str,
    value: JsonValue,
    *,
    nullable: bool = False,
    min_length: int = 0,
    pattern: str | None = None,
) -> str | None:
    """A string (or null) of ``min_length`` to 255 characters matching ``pattern``, checked
    in that order; the string, or None."""
    check_type(name, value, ("string", "null") if nullable else ("string",))
    if isinstance(value, str) and len(value) < min_length:
        check_non_empty(name, value)
    check_max_length(name, value)
    if pattern is not None:
        check_pattern(name, value, pattern)
    return value if isinstance(value, str) else None


def check_string_map(
    name: str, value: JsonValue, *, nullable: bool, null_values: bool = False
) -> dict[str, str]:
    """Cinder's ``metadata_allows_null`` / ``metadata`` / ``extra_specs(_with_null)``: an
    object whose keys match ``METADATA_KEY_PATTERN`` and whose values are strings (or null,
    kept as the empty string) of at most 255 characters without control characters. The
    values of matching keys are checked first, then every key that does not match is named.
    A null (allowed) map is the empty one."""
    check_type(name, value, ("object", "null") if nullable else ("object",))
    if not isinstance(value, dict):
        return {}
    for key, item in value.items():
        if matches(METADATA_KEY_PATTERN, key):
            check_string(key, item, nullable=null_values, pattern=NO_CONTROL_PATTERN)
    bad = sorted(k for k in value if not matches(METADATA_KEY_PATTERN, k))
    if bad:
        listed = ", ".join(repr(k) for k in bad)
        verb = "does" if len(bad) == 1 else "do"
        raise invalid_field(
            name, value, f"{listed} {verb} not match any of the regexes: {METADATA_KEY_PATTERN!r}"
        )
    return {k: v if isinstance(v, str) else "" for k, v in value.items()}


# --- printable text (Cinder's valid_description_regex) -------------------------------------


def _printable(char: str) -> bool:
    """Cinder's rule: not a control, format, surrogate, private-use or unassigned code point
    (``C*``), and no separator but the space kind (``Zs``)."""
    category = unicodedata.category(char)
    return not category.startswith("C") and (not category.startswith("Z") or category == "Zs")


def _printable_runs() -> Iterator[tuple[str, str]]:
    """(first, last) of each run of printable characters from U+0000 to U+FFFE."""
    first = ""
    for code in range(0xFFFF):
        char = chr(code)
        if _printable(char) and not first:
            first = char
        elif not _printable(char) and first:
            yield first, chr(code - 1)
            first = ""
    if first:
        yield first, chr(0xFFFE)


@functools.cache
def printable_pattern() -> str:
    """Cinder's ``valid_description_regex``: ``^[<runs>]*$``, a run written ``a`` or ``a-z``
    (ends escaped), the same string Cinder's messages show."""
    runs = (
        re.escape(a) if a == z else f"{re.escape(a)}-{re.escape(z)}" for a, z in _printable_runs()
    )
    return f"^[{''.join(runs)}]*$"


# --- Cinder's own checks -------------------------------------------------------------------


def check_string_length(label: str, value: str, limit: int = MAX_NAME_LENGTH) -> None:
    """Cinder's ``utils.check_string_length`` (after its schema passed)."""
    if len(value) > limit:
        raise invalid_input(f"{label} has {len(value)} characters, more than {limit}.")


def validate_integer(name: str, value: object, minimum: int, maximum: int | None = None) -> int:
    """oslo's ``validate_integer``: ``int(str(value))`` within ``minimum`` and ``maximum``."""
    try:
        number = int(str(value))
    except ValueError:
        raise InvalidInput(f"{name} must be an integer") from None
    if number < minimum:
        raise InvalidInput(f"{name} must be >= {minimum}")
    if maximum is not None and number > maximum:
        raise InvalidInput(f"{name} must be <= {maximum}")
    return number


# --- booleans ------------------------------------------------------------------------------


def bool_from_string(value: str) -> bool | None:
    """One of oslo's boolean strings (any case, unstripped), else None."""
    lowered = value.lower()
    if lowered in TRUE_STRINGS:
        return True
    if lowered in FALSE_STRINGS:
        return False
    return None


def is_true(value: str) -> bool:
    """Lenient: true for Cinder's true strings, false for anything else."""
    return bool_from_string(value.strip()) is True


def strict_bool(name: str, value: str) -> bool:
    """Exactly one of Cinder's boolean strings (any case), else 400."""
    parsed = bool_from_string(value)
    if parsed is None:
        raise InvalidInput(f"Value '{value}' for '{name}' is not a boolean.")
    return parsed


def parse_bool_param(name: str, value: str) -> bool:
    """A strict boolean query parameter; empty (not given) is false, whitespace is ignored."""
    return strict_bool(name, value.strip()) if value else False


def _in_boolean_enum(value: JsonValue) -> bool:
    return any(value == b and type(value) is type(b) for b in BOOLEAN_ENUM)


def _enum_truth(value: JsonValue) -> bool:
    return value is True or (isinstance(value, str) and bool_from_string(value) is True)


def check_boolean(name: str, value: JsonValue) -> bool:
    """``parameter_types.boolean``: a boolean or one of its strings (``BOOLEAN_ENUM``)."""
    check_type(name, value, ("boolean", "string"))
    if not _in_boolean_enum(value):
        raise invalid_field(name, value, f"{value!r} is not one of {list(BOOLEAN_ENUM)!r}")
    return _enum_truth(value)


def check_optional_boolean(name: str, value: JsonValue) -> bool:
    """``parameter_types.optional_boolean`` (``oneOf`` boolean, null); null is false."""
    if value is None:
        return False
    if not _in_boolean_enum(value):
        raise invalid_field(name, value, not_valid_under_any(value))
    return _enum_truth(value)


def check_name_skip_spaces(value: str) -> str:
    """Cinder's ``name_skip_leading_trailing_spaces`` format (its checker raises
    ``InvalidName`` itself, through any ``oneOf``); the name stripped."""
    prefix = "An invalid 'name' value was provided."
    if not value:
        raise InvalidInput(f"{prefix} The 'name' can not be None.")
    stripped = value.strip()
    if not stripped:
        raise InvalidInput(f"{prefix} The 'name' can not be empty.")
    if len(stripped) > MAX_NAME_LENGTH:
        raise InvalidInput(f"{prefix} The 'name' can not be greater than 255 characters.")
    return stripped
