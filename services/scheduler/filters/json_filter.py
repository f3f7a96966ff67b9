"""Cinder's JsonFilter: the ``query`` scheduler hint, a JSON list in prefix form, evaluated
over each pool (``cinder create --hint query='["=", "$backend_id", "h@b#p"]'``).

``[op, arg, ...]``: each argument that is a list is evaluated first; a string starting with
``$`` is a variable, ``$name`` or ``$name.key.key`` (a key of a mapping); any other string,
number or boolean is itself. A variable that does not resolve, and an empty string, are left
out of the arguments. Operators (Cinder's ``commands``):

``=`` ``<`` ``>`` ``<=`` ``>=``
    the first argument compared with every other one; False with fewer than two.
``in``
    the first argument is one of the others; False with fewer than two.
``not``
    the list of each argument negated (a list is true when not empty).
``or`` ``and``
    any / all of the arguments.

An empty query (``""``, ``[]``, ``{}``) passes every pool; a result that is a list passes if
any of its items is true.

Variables are Cinder's ``BackendState`` attributes of the pool (:func:`pool_namespace`):
``host`` and ``backend_id`` (``host@backend#pool``), ``pool_name``, ``capabilities`` (the
reported capabilities), ``service`` (``host``, ``availability_zone``, ``disabled``), the
capacities (``free_capacity_gb`` ...: ``'infinite'``/``'unknown'`` as Cinder holds them),
``reserved_percentage``, ``max_over_subscription_ratio``, the provisioning supports, and the
backend's ``volume_backend_name``, ``vendor_name``, ``driver_version``, ``storage_protocol``,
``multiattach``, ``QoS_support``. Cinder's ``service`` is the whole services row; ours has the
three keys a query can use (``disabled`` is always False: disabled backends never get here).

Where Cinder raises out of the scheduler (JSON that does not parse, an unknown operator, a
comparison Python cannot make such as a number with a word, a key looked up in what is not a
mapping), every pool fails with the reason (:class:`QueryError`).
"""

from __future__ import annotations

import json
import operator
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from services.scheduler.backend_state import PoolState
from services.scheduler.capacity import cinder_capacity
from services.scheduler.filters.base import FilterRequest, PoolFilter

__all__ = [
    "JSON_FILTER",
    "QueryError",
    "evaluate_query",
    "json_check",
    "pool_namespace",
]


class QueryError(ValueError):
    """A query Cinder's JsonFilter would raise on."""


def _compare(op: Callable[[Any, Any], Any]) -> Callable[[Sequence[object]], object]:
    def command(args: Sequence[object]) -> object:
        if len(args) < 2:
            return False
        try:
            # Every comparison is made, as Cinder's list comprehension makes them.
            results = [op(args[0], arg) for arg in args[1:]]
        except TypeError as error:
            raise QueryError(f"cannot compare {args[0]!r}: {error}") from error
        return all(results)

    return command


def _in(args: Sequence[object]) -> object:
    if len(args) < 2:
        return False
    return args[0] in args[1:]


def _not(args: Sequence[object]) -> object:
    return [not arg for arg in args]


def _or(args: Sequence[object]) -> object:
    return any(args)


def _and(args: Sequence[object]) -> object:
    return all(args)


_COMMANDS: dict[str, Callable[[Sequence[object]], object]] = {
    "=": _compare(operator.eq),
    "<": _compare(operator.lt),
    ">": _compare(operator.gt),
    "in": _in,
    "<=": _compare(operator.le),
    ">=": _compare(operator.ge),
    "not": _not,
    "or": _or,
    "and": _and,
}


def _variable(text: str, namespace: Mapping[str, object]) -> object:
    if not text:
        return None
    if not text.startswith("$"):
        return text
    first, *keys = text[1:].split(".")
    value = namespace.get(first)
    for key in keys:
        if value is None:
            return None
        if not isinstance(value, Mapping):
            raise QueryError(f"{text}: {type(value).__name__} has no key {key!r}")
        value = value.get(key)
    return value


def _process(query: object, namespace: Mapping[str, object]) -> object:
    if not query:
        return True
    if not isinstance(query, list):
        raise QueryError(f"a query is a list, not {type(query).__name__}")
    command = query[0]
    if not isinstance(command, str) or command not in _COMMANDS:
        raise QueryError(f"unknown operator {command!r}")
    args: list[object] = []
    for arg in query[1:]:
        if isinstance(arg, list):
            arg = _process(arg, namespace)
        elif isinstance(arg, str):
            arg = _variable(arg, namespace)
        if arg is not None:
            args.append(arg)
    return _COMMANDS[command](args)


def evaluate_query(query: str | None, namespace: Mapping[str, object]) -> bool:
    """Whether the backend described by ``namespace`` satisfies the JSON ``query``."""
    if not query:
        return True
    try:
        parsed = json.loads(query)
    except ValueError as error:
        raise QueryError(f"not JSON: {error}") from error
    result = _process(parsed, namespace)
    if isinstance(result, list):
        return any(result)
    return bool(result)


def pool_namespace(pool: PoolState) -> dict[str, object]:
    """The pool as Cinder's ``BackendState`` attributes (what ``$name`` reads)."""
    capabilities = pool.capabilities
    return {
        "host": pool.pool_id,
        "backend_id": pool.pool_id,
        "pool_name": pool.pool_name,
        "capabilities": dict(capabilities),
        "service": {
            "host": pool.backend,
            "availability_zone": pool.availability_zone,
            "disabled": False,
        },
        "total_capacity_gb": cinder_capacity(pool.total_capacity_gb),
        "free_capacity_gb": cinder_capacity(pool.free_capacity_gb),
        "allocated_capacity_gb": pool.allocated_capacity_gb,
        "provisioned_capacity_gb": pool.provisioned_capacity_gb,
        "reserved_percentage": pool.reserved_percentage,
        "max_over_subscription_ratio": pool.max_over_subscription_ratio,
        "thin_provisioning_support": pool.thin_provisioning_support,
        "thick_provisioning_support": pool.thick_provisioning_support,
        "volume_backend_name": capabilities.get("volume_backend_name"),
        "vendor_name": capabilities.get("vendor_name"),
        "driver_version": capabilities.get("driver_version"),
        "storage_protocol": capabilities.get("storage_protocol"),
        "multiattach": capabilities.get("multiattach", False),
        "QoS_support": capabilities.get("QoS_support", False),
    }


def json_check(pool: PoolState, request: FilterRequest) -> str | None:
    query = request.query
    try:
        if evaluate_query(query, pool_namespace(pool)):
            return None
    except QueryError as error:
        return f"The query hint {query} cannot be evaluated on host {pool.pool_id}: {error}"
    return f"Host {pool.pool_id} does not satisfy the query hint {query}"


JSON_FILTER = PoolFilter("JsonFilter", json_check)
