"""What a destination field accepts, checked before anything is sent.

Connectors describe each field with a vendor-neutral ``kind`` (and, for choice fields, the
``options`` the vendor declares). ``value_problem`` says why a mapped value would be refused;
the planner files such a record as *invalid* with that reason instead of sending it (a value
the vendor refuses can cost the whole batch, and vendors count the error against the
integration). Empty values (``None``, ``""``) clear a field and are always accepted.
"""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any

from django.utils.dateparse import parse_date, parse_datetime


class ValueKind(StrEnum):
    TEXT = "text"
    NUMBER = "number"
    DATE = "date"
    DATETIME = "datetime"
    BOOL = "bool"
    EMAIL = "email"
    CHOICE = "choice"  # one of the field's options
    CHOICES = "choices"  # several options joined by ``separator`` (HubSpot checkboxes: ";")


_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_EPOCH_MS = re.compile(r"^\d{1,15}$")
SHOWN_OPTIONS = 12


def is_email(value: str) -> bool:
    """Whether ``value`` has the shape of an e-mail address (the one rule connectors use)."""
    return bool(_EMAIL.match(value))


def _number_problem(value: Any) -> str | None:
    if isinstance(value, bool):
        return "is a true/false value, not a number"
    if isinstance(value, int | float | Decimal):
        return None
    try:
        Decimal(str(value).strip())
    except InvalidOperation:
        return "is not a number"
    return None


def _moment_problem(value: Any, *, with_time: bool) -> str | None:
    if isinstance(value, date):  # datetime is a date too
        return None
    text = str(value).strip()
    if _EPOCH_MS.match(text):
        return None  # epoch milliseconds, which date fields take as well
    try:
        parsed = parse_datetime(text) or parse_date(text)
    except ValueError:  # well-formed, not a real day (2026-02-30)
        parsed = None
    if parsed is None:
        return "is not a date (YYYY-MM-DD)" if not with_time else "is not a date-time (ISO 8601)"
    return None


def _choice_problem(values: list[str], options: tuple[str, ...]) -> str | None:
    bad = [v for v in values if v not in options]
    if not bad:
        return None
    shown = ", ".join(options[:SHOWN_OPTIONS]) + (", ..." if len(options) > SHOWN_OPTIONS else "")
    return f"is not one of the field's options ({shown}); map it with a value map"


def value_problem(field, value: Any) -> str | None:
    """Why ``field`` (a DestinationField) would refuse ``value``, or None if it takes it."""
    if value is None or value == "":
        return None
    kind = field.kind
    problem = None
    if kind == ValueKind.NUMBER:
        problem = _number_problem(value)
    elif kind in (ValueKind.DATE, ValueKind.DATETIME):
        problem = _moment_problem(value, with_time=kind == ValueKind.DATETIME)
    elif kind == ValueKind.BOOL:
        if not isinstance(value, bool) and str(value).strip().lower() not in ("true", "false"):
            problem = "is not true or false"
    elif kind == ValueKind.EMAIL:
        if not _EMAIL.match(str(value)):
            problem = "is not an e-mail address"
    elif kind == ValueKind.CHOICE and field.options:
        problem = _choice_problem([str(value)], field.options)
    elif kind == ValueKind.CHOICES and field.options:
        parts = [p for p in str(value).split(field.separator) if p]
        problem = _choice_problem(parts, field.options)
    if problem is None:
        return None
    shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
    return f"{field.name}: {shown} {problem}"


def value_map_problems(field, value_map: dict) -> list[str]:
    """The targets of a mapping's value map that ``field`` would refuse."""
    return [problem for target in value_map.values() if (problem := value_problem(field, target))]


# --- the same rules in SQL, for plans made in the database (integrations.engine.plan_sql) ---
# Each is *sufficient*: true only where the Python rule above certainly accepts the value. A
# row it does not vouch for is planned in Python, which decides exactly; so the two paths
# always give the same decision (tests/integrations/test_plan_sql.py proves it).


def email_sql(expr: str, *, pg: bool) -> str:
    """``_EMAIL`` for a value already known to be printable ASCII (so ``\\s`` is a space)."""
    if pg:
        return f"({expr} ~ '^[^@ ]+@[^@ ]+\\.[^@ ]+$')"
    return f"({expr} GLOB '?*@?*.?*' AND {expr} NOT GLOB '*@*@*' AND {expr} NOT GLOB '* *')"


def value_ok_sql(field, source_type: str, expr: str, *, pg: bool) -> tuple[str, list[Any]]:
    """SQL true where ``value_problem(field, v)`` is certainly None for the value ``v`` the
    planner reads from ``expr`` (a plain source field of the dataset type ``source_type``:
    "int", "decimal", "bool", "datetime" or "text", as exports.datasets.FieldType names them)."""
    text = source_type != "int"  # the planner reads every other type as text
    empty = f"{expr} IS NULL" + (f" OR {expr} = ''" if text else "")
    kind = field.kind
    if kind == ValueKind.NUMBER and source_type in ("int", "decimal"):
        return "1 = 1", []
    if kind in (ValueKind.DATE, ValueKind.DATETIME) and source_type == "datetime":
        return "1 = 1", []
    if kind == ValueKind.BOOL and source_type == "bool":
        return "1 = 1", []
    if kind == ValueKind.NUMBER and source_type == "text" and pg:
        return f"({empty} OR {expr} ~ '^-?[0-9]{{1,30}}(\\.[0-9]{{1,30}})?$')", []
    if kind == ValueKind.BOOL and source_type == "text":
        return f"({empty} OR {expr} IN ('true', 'false'))", []
    if kind == ValueKind.EMAIL and source_type == "text":
        printable = (
            f"{expr} ~ '^[!-~]+$'" if pg else f"({expr} <> '' AND {expr} NOT GLOB '*[^!-~]*')"
        )
        return f"({empty} OR ({printable} AND {email_sql(expr, pg=pg)}))", []
    if kind in (ValueKind.CHOICE, ValueKind.CHOICES):
        options = [o for o in field.options if kind == ValueKind.CHOICE or field.separator not in o]
        if not field.options:
            return "1 = 1", []
        if not options:
            return f"({empty})", []
        cell = expr if text else f"CAST({expr} AS TEXT)"
        return f"({empty} OR {cell} IN ({', '.join(['%s'] * len(options))}))", options
    return f"({empty})", []
