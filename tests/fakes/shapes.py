"""Small checks of JSON request shapes, returning human-readable problems (violations).

A shape is a mapping of key to expected type (a Python type, a tuple of types, or a
``frozenset`` of allowed string values). ``check_object`` reports missing required keys,
unexpected keys and wrong types, each prefixed with where in the body it was found.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

Expected = type | tuple[type, ...] | frozenset[str]


def type_name(value: Any) -> str:
    """The JSON name of ``value``'s type, for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _expected_name(expected: Expected) -> str:
    if isinstance(expected, frozenset):
        return "one of " + ", ".join(sorted(expected))
    types = expected if isinstance(expected, tuple) else (expected,)
    names = {bool: "boolean", int: "integer", float: "number", str: "string"}
    names.update({list: "array", dict: "object"})
    return " or ".join(names.get(t, t.__name__) for t in types)


def matches(value: Any, expected: Expected) -> bool:
    """Whether ``value`` has the expected JSON type (a boolean is never a number)."""
    if isinstance(expected, frozenset):
        return isinstance(value, str) and value in expected
    types = expected if isinstance(expected, tuple) else (expected,)
    if isinstance(value, bool):
        return bool in types
    return isinstance(value, types)


def check_value(value: Any, expected: Expected, where: str) -> list[str]:
    """One problem if ``value`` at ``where`` does not have the expected type."""
    if matches(value, expected):
        return []
    shown = repr(value) if isinstance(value, str) else type_name(value)
    return [f"{where}: expected {_expected_name(expected)}, got {shown}"]


def check_object(
    value: Any,
    where: str,
    *,
    required: Mapping[str, Expected],
    optional: Mapping[str, Expected] | None = None,
    allow_extra: bool = False,
) -> list[str]:
    """Problems with a JSON object: not an object, missing/extra keys, wrongly typed values."""
    if not isinstance(value, dict):
        return [f"{where}: expected an object, got {type_name(value)}"]
    optional = optional or {}
    problems = [f"{where}: missing required key {key!r}" for key in required if key not in value]
    for key, item in value.items():
        expected = required.get(key) or optional.get(key)
        if expected is None:
            if not allow_extra:
                problems.append(f"{where}: unexpected key {key!r}")
            continue
        problems += check_value(item, expected, f"{where}.{key}")
    return problems


def check_list(value: Any, where: str, *, max_items: int | None, source: str) -> list[str]:
    """Problems with a JSON array: not an array, or more than ``max_items`` (citing ``source``)."""
    if not isinstance(value, list):
        return [f"{where}: expected an array, got {type_name(value)}"]
    if max_items is not None and len(value) > max_items:
        return [
            f"{where}: {len(value)} items exceed the vendor maximum of {max_items} per call "
            f"{source}"
        ]
    return []
