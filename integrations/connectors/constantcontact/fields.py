"""Constant Contact's contact fields and values: the import's core keys [C14] and the
account's custom fields (``GET /contact_custom_fields``, sent as ``cf:<name>``) [C25]."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from integrations.connectors.base import DestinationField
from integrations.connectors.values import ValueKind

CORE = (  # the import's keys for a contact's core properties [C14]
    ("email", "E-mail address", ValueKind.EMAIL),
    ("first_name", "First name", ValueKind.TEXT),
    ("last_name", "Last name", ValueKind.TEXT),
    ("job_title", "Job title", ValueKind.TEXT),
    ("company_name", "Company name", ValueKind.TEXT),
    ("phone", "Phone", ValueKind.TEXT),
    ("home_phone", "Home phone", ValueKind.TEXT),
    ("work_phone", "Work phone", ValueKind.TEXT),
    ("street", "Street", ValueKind.TEXT),
    ("street2", "Street (2nd line)", ValueKind.TEXT),
    ("city", "City", ValueKind.TEXT),
    ("state", "State", ValueKind.TEXT),
    ("zip", "Postal code", ValueKind.TEXT),
    ("country", "Country", ValueKind.TEXT),
)
KINDS = {  # custom field types [C25]; the rest (string, text_area) take text
    "number": ValueKind.NUMBER,
    "currency": ValueKind.NUMBER,
    "date": ValueKind.DATE,
    "datetime": ValueKind.DATETIME,
    "boolean": ValueKind.BOOL,
    "single_select": ValueKind.CHOICE,
    "multi_select": ValueKind.CHOICES,  # joined by "," (emulator choice: unconfirmed)
}
CUSTOM_PREFIX = "cf:"


def cc_value(value) -> str:
    """The import takes every value as text [C14]; "" clears it."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime) or hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def destination_fields(custom_fields: Iterable) -> list[DestinationField]:
    """The core fields, then the account's custom fields with their kinds and choices."""
    fields = [
        DestinationField(
            name,
            label,
            "email" if name == "email" else "string",
            unique=name == "email",
            kind=kind,
        )
        for name, label, kind in CORE
    ]
    for item in custom_fields:
        if not isinstance(item, dict) or not item.get("name"):
            continue
        kind = KINDS.get(str(item.get("type") or ""), ValueKind.TEXT)
        choices = tuple(
            str(choice["choice_label"])
            for choice in item.get("choices") or ()
            if isinstance(choice, dict) and choice.get("choice_label")
        )
        if kind in (ValueKind.CHOICE, ValueKind.CHOICES) and not choices:
            kind = ValueKind.TEXT  # a choice field that declares no choices takes any text
        fields.append(
            DestinationField(
                f"{CUSTOM_PREFIX}{item['name']}",
                str(item.get("label") or item["name"]),
                str(item.get("type") or "string"),
                kind=kind,
                options=choices,
                separator=",",
            )
        )
    return fields
