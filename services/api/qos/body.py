"""The bodies of Cinder's QoS specs API (``cinder/api/schemas/qos_specs.py`` and the checks of
``cinder/volume/qos_specs.py``), with Cinder's messages.

Create: ``{"qos_specs": {"name": ..., <key>: <value>...}}``; the name is stripped, every other
key is a spec (``consumer`` taken out of them), checked by ``validate_dictionary_string_length``.
Set: ``{"qos_specs": {<key>: <string or null>}}`` (the extra-specs rule). Unset:
``{"keys": [<unique non-empty strings>]}``.
"""

from __future__ import annotations

from dataclasses import dataclass

from google.protobuf import struct_pb2

from cindermesh.errors import InvalidInput
from services.api.schema import (
    MAX_NAME_LENGTH,
    JsonValue,
    bounded_messages,
    check_no_additional,
    check_present,
    check_string,
    check_string_map,
    check_type,
    invalid_field,
    invalid_input,
    object_to_python,
    require_object,
    required_property,
)

__all__ = [
    "CONSUMERS",
    "DEFAULT_CONSUMER",
    "QosCreateInput",
    "check_consumer",
    "qos_create_input",
    "validate_qos_create",
    "validate_qos_set",
    "validate_qos_unset",
]

#: Cinder's ``CONTROL_LOCATION``, in its order.
CONSUMERS = ("back-end", "front-end", "both")
#: The consumer of specs created without one (the object field's default).
DEFAULT_CONSUMER = "back-end"
#: ``str()`` of Cinder's ``QoSConsumerField()``, which its message shows.
_CONSUMER_FIELD = (
    "QoSConsumerValues(default=<class 'oslo_versionedobjects.fields.UnspecifiedDefault'>,"
    f"nullable=False,valid_values={CONSUMERS!r})"
)
#: Body keys besides ``qos_specs`` that Cinder's create schema declares (by mistake).
_CREATE_PROPERTIES = ("qos_specs", "type")


@dataclass(frozen=True)
class QosCreateInput:
    name: str
    consumer: str
    specs: dict[str, str | None]


def check_consumer(value: JsonValue) -> str:
    """The object's consumer field: one of ``CONSUMERS``; null is the default."""
    if value is None:
        return DEFAULT_CONSUMER
    if value not in CONSUMERS:
        raise InvalidInput(f"Invalid qos specs: Valid consumer of QoS specs are: {_CONSUMER_FIELD}")
    assert isinstance(value, str)
    return value


def _name(value: JsonValue) -> str:
    """``type: string`` then the ``name_skip_leading_trailing_spaces`` format."""
    check_type("name", value, ("string",))
    assert isinstance(value, str)
    prefix = "An invalid 'name' value was provided."
    if not value:
        raise InvalidInput(f"{prefix} The 'name' can not be None.")
    stripped = value.strip()
    if not stripped:
        raise InvalidInput(f"{prefix} The 'name' can not be empty.")
    if len(stripped) > MAX_NAME_LENGTH:
        raise InvalidInput(f"{prefix} The 'name' can not be greater than 255 characters.")
    return stripped


def _check_length(label: str, value: JsonValue, min_length: int) -> None:
    """oslo's ``strutils.check_string_length`` as Cinder's ``utils`` wraps it."""
    if not isinstance(value, str):
        raise invalid_input(f"{label} is not a string or unicode")
    if len(value) < min_length:
        raise invalid_input(f"{label} has {len(value)} characters, less than {min_length}.")
    if len(value) > MAX_NAME_LENGTH:
        raise invalid_input(f"{label} has {len(value)} characters, more than {MAX_NAME_LENGTH}.")


def _spec_strings(specs: dict[str, JsonValue]) -> dict[str, str | None]:
    """Cinder's ``validate_dictionary_string_length``: keys of 1 to 255 characters, values
    strings of at most 255 (or null)."""
    for key, value in specs.items():
        _check_length(f'Key "{key}"', key, 1)
        if value is not None:
            _check_length(f'Value for key "{key}"', value, 0)
    return {k: v if isinstance(v, str) else None for k, v in specs.items()}


@bounded_messages
def validate_qos_create(body: struct_pb2.Struct) -> dict[str, JsonValue]:
    """The create schema (Cinder checks it before the policy); the ``qos_specs`` object."""
    root = object_to_python(body)
    if "qos_specs" in root:
        qos_specs = require_object("qos_specs", root["qos_specs"])
        if "name" in qos_specs:
            _name(qos_specs["name"])
        else:
            raise invalid_field("qos_specs", qos_specs, required_property("name"))
    check_present("qos_specs" in root, "qos_specs")
    check_no_additional(None, root, _CREATE_PROPERTIES)
    return dict(qos_specs)


@bounded_messages
def qos_create_input(qos_specs: dict[str, JsonValue]) -> QosCreateInput:
    """After the policy: the stripped name, the specs' lengths, and the consumer taken out of
    them (an empty one is the default)."""
    specs = dict(qos_specs)
    name = str(specs.pop("name")).strip()
    strings = _spec_strings(specs)
    consumer = strings.pop("consumer", None)
    return QosCreateInput(name=name, consumer=check_consumer(consumer or None), specs=strings)


@bounded_messages
def validate_qos_set(body: struct_pb2.Struct) -> dict[str, str | None]:
    """``{"qos_specs": <extra specs with null values>}``; the keys and values as sent."""
    root = object_to_python(body)
    if "qos_specs" in root:
        check_string_map("qos_specs", root["qos_specs"], nullable=False, null_values=True)
    check_present("qos_specs" in root, "qos_specs")
    check_no_additional(None, root, ("qos_specs",))
    sent = root["qos_specs"]
    assert isinstance(sent, dict)
    return {k: v if isinstance(v, str) else None for k, v in sent.items()}


@bounded_messages
def validate_qos_unset(body: struct_pb2.Struct) -> list[str]:
    """``{"keys": [...]}``: an array of unique strings of 1 to 255 characters."""
    root = object_to_python(body)
    if "keys" in root:
        keys = root["keys"]
        check_type("keys", keys, ("array",))
        assert isinstance(keys, list)
        for index, key in enumerate(keys):
            check_string(str(index), key, min_length=1)
        if len({repr(k) for k in keys}) != len(keys):
            raise invalid_field("keys", keys, f"{keys!r} has non-unique elements")
    check_present("keys" in root, "keys")
    check_no_additional(None, root, ("keys",))
    found = root["keys"]
    assert isinstance(found, list)
    return [str(k) for k in found]
