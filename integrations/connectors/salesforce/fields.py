"""Salesforce fields: what a describe says (``GET .../sobjects/{name}/describe``) as the
engine's DestinationFields, and our values as Salesforce takes them, in JSON (sObject
Collections) or in CSV (Bulk API 2.0).

Facts from ../shared/VENDORS.md §4: field types, picklists (multi-select: ";"-separated),
dates and UTC date-times [S28]; custom fields end in ``__c`` [S29]; a relationship is written
by the related record's external id, ``"Account": {"External_Id__c": "C-1"}`` in JSON [S1] and
the column ``Account.External_Id__c`` in CSV [S12]; in CSV an empty cell leaves a field as it
is and ``#N/A`` clears it [S12].
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from integrations.connectors.base import DestinationField
from integrations.connectors.values import ValueKind

NUMBER_TYPES = {"int", "double", "currency", "percent", "long"}
_KINDS = {
    "boolean": ValueKind.BOOL,
    "date": ValueKind.DATE,
    "datetime": ValueKind.DATETIME,
    "email": ValueKind.EMAIL,
    **dict.fromkeys(NUMBER_TYPES, ValueKind.NUMBER),
}
CSV_NULL = "#N/A"


def kind_of(spec: dict) -> str:
    """A describe field's value kind. Only a restricted picklist refuses other values."""
    kind = _KINDS.get(spec.get("type", ""), ValueKind.TEXT)
    if spec.get("type") in ("picklist", "multipicklist") and spec.get("restrictedPicklist"):
        kind = ValueKind.CHOICE if spec["type"] == "picklist" else ValueKind.CHOICES
    return kind


def describe_fields(describe: dict) -> list[DestinationField]:
    """The object's fields. Required: not nillable, createable and without a default."""
    fields = []
    for spec in describe.get("fields", []):
        writable = spec.get("createable") or spec.get("updateable")
        fields.append(
            DestinationField(
                name=spec["name"],
                label=spec.get("label") or spec["name"],
                type=spec.get("type", "string"),
                unique=bool(spec.get("externalId")),
                required=bool(
                    not spec.get("nillable", True)
                    and spec.get("createable")
                    and not spec.get("defaultedOnCreate")
                ),
                read_only=not writable,
                kind=kind_of(spec),
                options=tuple(
                    str(p["value"])
                    for p in spec.get("picklistValues") or ()
                    if p.get("active", True) and "value" in p
                ),
            )
        )
    return fields


def references(describe: dict) -> list[tuple[dict, str]]:
    """Writable lookups to one object: (the reference field, the object it points to)."""
    return [
        (spec, spec["referenceTo"][0])
        for spec in describe.get("fields", [])
        if spec.get("type") == "reference"
        and spec.get("relationshipName")
        and len(spec.get("referenceTo") or ()) == 1
        and (spec.get("createable") or spec.get("updateable"))
    ]


def relationship_fields(spec: dict, target: dict) -> list[DestinationField]:
    """``Account.External_Id__c``: the lookup ``spec`` written by an external id of its
    target object (its describe)."""
    relationship = spec["relationshipName"]
    return [
        DestinationField(
            name=f"{relationship}.{ext['name']}",
            label=f"{spec.get('label') or spec['name']} (by {target['name']} {ext['name']})",
            type="reference",
            kind=ValueKind.TEXT,
        )
        for ext in target.get("fields", [])
        if ext.get("externalId")
    ]


def _moment(value: Any, kind: str) -> str:
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=UTC)
        return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    text = str(value).strip()
    if text.isdigit():  # epoch milliseconds, which the value checks let through
        moment = datetime.fromtimestamp(int(text) / 1000, tz=UTC)
        return moment.date().isoformat() if kind == ValueKind.DATE else moment.isoformat()
    if kind == ValueKind.DATE:
        return text[:10]
    return text


def _number(value: Any, spec_type: str) -> int | float | str:
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        return str(value)  # refused by Salesforce per record, with its reason
    if spec_type == "int" or (number == number.to_integral_value() and spec_type == "long"):
        return int(number)
    return float(number)


def json_value(field: DestinationField | None, value: Any) -> Any:
    """A value for a JSON body; None clears the field. Unknown fields go as they are."""
    if value is None or value == "":
        return None
    if field is None:
        return value
    if field.kind == ValueKind.BOOL:
        return value if isinstance(value, bool) else str(value).strip().lower() == "true"
    if field.kind == ValueKind.NUMBER:
        return _number(value, field.type)
    if field.kind in (ValueKind.DATE, ValueKind.DATETIME):
        return _moment(value, field.kind)
    return str(value)


def csv_value(field: DestinationField | None, value: Any) -> str:
    """A value for a Bulk CSV cell: text; ``#N/A`` clears the field."""
    converted = json_value(field, value)
    if converted is None:
        return CSV_NULL
    if isinstance(converted, bool):
        return "true" if converted else "false"
    return str(converted)


def record_body(payload: dict[str, Any], fields: dict[str, DestinationField]) -> dict[str, Any]:
    """A record's fields for sObject Collections: relationships nested, booleans never
    cleared (an empty opt-out flag is left as it is, not turned into "opted in")."""
    body: dict[str, Any] = {}
    for name, value in payload.items():
        field = fields.get(name)
        converted = json_value(field, value)
        if "." in name:
            if converted is None:
                continue  # a lookup is not cleared by an empty external id
            relationship, ext = name.split(".", 1)
            body[relationship] = {ext: converted}
            continue
        if converted is None and field is not None and field.kind == ValueKind.BOOL:
            continue
        body[name] = converted
    return body


def csv_cell(field: DestinationField | None, name: str, value: Any) -> str:
    """One CSV cell: as ``csv_value``, but an empty lookup or flag leaves the field as it is."""
    empty = value is None or value == ""
    if empty and ("." in name or (field is not None and field.kind == ValueKind.BOOL)):
        return ""
    return csv_value(field, value)
