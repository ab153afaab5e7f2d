"""Bounds: the one place that says how big, small, long, early, late and deep an input may be.

Every value that enters the product from a person or a program (the export API's query
parameters, the configure API's document, the admin's forms, filters stored on syncs and
schedules) is checked against a bound declared here, and refused with a message naming the
field and the allowed range. The layers use these declarations rather than numbers of their
own:

- model fields take ``Range.validators()`` (admin forms and ``full_clean`` run them);
- DRF serializer fields take ``Range.serializer_kwargs()`` (the configure API; the OpenAPI
  schema then shows the range too);
- the export parser (``exports.query``) calls ``Range.check``, ``text_check`` and
  ``moment_check``;
- JSON objects (vendor config, destination config, filters) are checked by
  ``json_check``, and request bodies are parsed by ``mktintegration.parsers`` with a depth
  bound, so a deeply nested document is a 400 and never a ``RecursionError``.

``BoundError`` carries the field and the message; each layer turns it into its own error type
(an ``ExportInputError``, a form error, a serializer error).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator


class BoundError(ValueError):
    """A value outside its bound; ``field`` names it, ``message`` says the allowed range."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field
        self.message = message


def _number(value: float) -> str:
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,}"
    return f"{int(value):,}"


@dataclass(frozen=True)
class Range:
    """An inclusive numeric range."""

    minimum: float
    maximum: float
    unit: str = ""

    def describe(self) -> str:
        unit = f" {self.unit}" if self.unit else ""
        return f"from {_number(self.minimum)} to {_number(self.maximum)}{unit}"

    def message(self, field: str, value: Any) -> str:
        return f"{field} must be {self.describe()} (got {_shown(value)})"

    def check(self, field: str, value: float) -> float:
        if not self.minimum <= value <= self.maximum:
            raise BoundError(field, self.message(field, value))
        return value

    def contains(self, value: Any) -> bool:
        return isinstance(value, int | float) and self.minimum <= value <= self.maximum

    def validators(self) -> list:
        text = f"Ensure this value is {self.describe()}."
        return [
            validate_finite,
            MinValueValidator(self.minimum, message=text),
            MaxValueValidator(self.maximum, message=text),
        ]

    def _noun(self) -> str:
        whole = all(isinstance(v, int) for v in (self.minimum, self.maximum))
        return "whole number" if whole else "finite number"

    def serializer_kwargs(self) -> dict[str, Any]:
        """For DRF's IntegerField and FloatField (which refuse NaN and infinities)."""
        in_range = f"Ensure this value is {self.describe()}."
        return {
            "min_value": self.minimum,
            "max_value": self.maximum,
            "error_messages": {
                "invalid": f"Enter a {self._noun()} {self.describe()}.",
                "min_value": in_range,
                "max_value": in_range,
            },
        }


def validate_finite(value: Any) -> None:
    """NaN and infinities pass every comparison-based range check: refuse them first."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ValidationError("Enter a finite number.", code="not_finite")


def _shown(value: Any) -> str:
    text = repr(value) if not isinstance(value, int | float) else _number(value)
    return text if len(text) <= 40 else text[:37] + "..."


# --- numbers -----------------------------------------------------------------------------
# Schedules: at least every minute, at most once a year.
EVERY_MINUTES = Range(1, 525_600, "minutes")
# Incremental plans re-read rows changed this long before the watermark: up to a week.
LOOKBACK_MINUTES = Range(0, 10_080, "minutes")
# A connection's own rate budget: requests per window, and the window.
RATE_LIMIT_REQUESTS = Range(1, 1_000_000, "requests")
RATE_LIMIT_SECONDS = Range(0.001, 86_400, "seconds")
# A connection's own daily quota (requests per day): at least one, at most a hundred million.
DAILY_QUOTA_REQUESTS = Range(1, 100_000_000, "requests")
SHARE = Range(0, 1)
# Rows: a scheduled file's cap and an export request's limit (the role's limit applies too).
EXPORT_ROWS = Range(1, 1_000_000_000, "rows")
RETENTION_DAYS = Range(1, 3_650, "days")
PORT = Range(1, 65_535)
# Integer keys (cursor positions): what a signed 64-bit column holds.
KEY = Range(0, 2**63 - 1)
# Ids of our own rows given in a request (dead letters to replay).
ID = Range(1, 2**63 - 1)
# Integer filters without a narrower range of their own: what a 32-bit column holds.
INTEGER = Range(-(2**31), 2**31 - 1)

# --- text --------------------------------------------------------------------------------
TEXT_VALUE_CHARS = 200  # one filter value, a string cursor key
PARAM_CHARS = 4_000  # one query parameter as sent (a comma-separated list of values)
LIST_ITEMS = 500  # values in one list (filter values, regions, e-mail addresses)
SECRET_CHARS = 4_000  # one credential (OAuth tokens can be long)

# --- structure ---------------------------------------------------------------------------
SYNCS_PER_DOCUMENT = 100  # syncs one configure document may list
MAPPINGS_PER_SYNC = 200  # field mappings of one sync
MAPPING_VALUES = 200  # entries in one mapping's value map
ALERT_EMAILS = 50  # alert recipients of one object
JSON_DEPTH = 8  # nesting of a stored JSON object (config, destination config, filters)
JSON_BYTES = 64 * 1024  # its size, encoded
BODY_DEPTH = 32  # nesting of a request body (the configure document holds the objects above)
# A vendor's webhook request (integrations/webhooks): events in one, nesting of a JSON body
# (HubSpot's is an array of flat events: 2), fields of a form body (Mailchimp's data[...]).
WEBHOOK_EVENTS = 1_000
WEBHOOK_DEPTH = 4
WEBHOOK_FORM_FIELDS = 500
# Changes announced to real-time syncs (POST /marketing/events): events in one request, and
# how far ahead of our clock an event's time may be (a sender's clock a little fast).
CHANGE_EVENTS = 1_000
CHANGE_EVENT_AHEAD_SECONDS = 300

# --- moments -----------------------------------------------------------------------------
EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
LATEST = datetime(2999, 12, 31, 23, 59, 59, tzinfo=UTC)


def text_check(field: str, value: str, *, max_chars: int = TEXT_VALUE_CHARS) -> str:
    """Text of bounded length with no control characters (NUL cannot even be stored)."""
    if len(value) > max_chars:
        raise BoundError(field, f"{field}: at most {max_chars:,} characters (got {len(value):,})")
    bad = next((ch for ch in value if ord(ch) < 32 or ord(ch) == 127), None)
    if bad is not None:
        raise BoundError(
            field, f"{field}: control characters are not allowed (found U+{ord(bad):04X})"
        )
    return value


def moment_check(field: str, value: datetime) -> datetime:
    """A date-time between EARLIEST and LATEST (aware, UTC)."""
    try:
        moment = value if value.tzinfo else value.replace(tzinfo=UTC)
        moment = moment.astimezone(UTC)
    except OverflowError:
        moment = None
    if moment is None or not EARLIEST <= moment <= LATEST:
        raise BoundError(
            field,
            f"{field} must be between {EARLIEST:%Y-%m-%d} and {LATEST:%Y-%m-%d} (got {value})",
        )
    return moment


def json_depth(value: Any) -> int:
    """How deeply lists and objects nest in ``value`` (a scalar is 0), without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children: Iterable[Any]
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, list | tuple):
            children = item
        else:
            continue
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in children)
    return deepest


def json_check(field: str, value: Any, *, depth: int = JSON_DEPTH, size: int = JSON_BYTES) -> Any:
    """A JSON value nested at most ``depth`` levels and at most ``size`` bytes encoded."""
    found = json_depth(value)
    if found > depth:
        raise BoundError(field, f"{field}: nested {found} levels deep; at most {depth} allowed")
    encoded = len(json.dumps(value, separators=(",", ":"), default=str).encode())
    if encoded > size:
        raise BoundError(field, f"{field}: {encoded:,} bytes as JSON; at most {size:,} allowed")
    return value


def validate_json(value: Any) -> None:
    """Model-field validator form of ``json_check`` (JSONField(validators=[validate_json]))."""
    try:
        json_check("value", value)
    except BoundError as exc:
        raise ValidationError(exc.message.removeprefix("value: ").capitalize()) from None


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


def json_loads(text: str | bytes, *, field: str, depth: int) -> Any:
    """``json.loads`` with a nesting bound: BoundError instead of a RecursionError (or of a
    document nested deeper than ``depth``); ValueError for text that is not JSON."""
    try:
        value = json.loads(text, parse_constant=_refuse_constant)
    except RecursionError:
        raise BoundError(field, f"{field}: nested more than {depth} levels deep") from None
    found = json_depth(value)
    if found > depth:
        raise BoundError(field, f"{field}: nested {found} levels deep; at most {depth} allowed")
    return value


def stored_problems(instance, *, exclude: tuple[str, ...] = ()) -> list[str]:
    """What of a saved object breaks its fields' bounds: a row written before the bound
    existed or behind the application's back. Pages that list objects show these instead of
    computing with the values (and failing)."""
    skipped = [f.name for f in instance._meta.fields if f.is_relation] + list(exclude)
    try:
        instance.clean_fields(exclude=skipped)
    except ValidationError as exc:
        return [
            f"{name} is out of range: {message}"
            for name, messages in exc.message_dict.items()
            for message in messages
        ]
    return []
