"""In-memory HubSpot CRM data for ``FakeHubSpot``: property definitions and objects per type.

Citations in brackets point to the HubSpot source list in /work/shared/VENDORS.md (section 3).
This module has no lock of its own: ``FakeHubSpot`` calls it under the vendor's state lock.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

OBJECT_TYPES = ("companies", "contacts")
#: Properties HubSpot returns on every object whatever was asked for.
DEFAULT_PROPERTIES = ("createdate", "hs_lastmodifieddate", "hs_object_id")
#: At most 10 unique-value properties per object (secondary) [H16].
MAX_UNIQUE_PROPERTIES = 10
LIFECYCLE_STAGES = (
    "subscriber",
    "lead",
    "marketingqualifiedlead",
    "salesqualifiedlead",
    "opportunity",
    "customer",
    "evangelist",
    "other",
)
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
#: The usual ``fieldType`` for each property ``type`` [H25].
FIELD_TYPES = {"string": "text", "number": "number", "enumeration": "select", "date": "date"}
FIELD_TYPES.update(bool="booleancheckbox", datetime="date", phone_number="phonenumber")


def iso_now() -> str:
    """HubSpot's timestamp format: ISO 8601 UTC with milliseconds, e.g. 2026-01-02T03:04:05.678Z."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class PropertyDef:
    """One property definition, shaped like ``GET /crm/v3/properties/{type}`` [H25]."""

    name: str
    label: str
    type: str = "string"
    field_type: str = "text"
    unique: bool = False
    read_only: bool = False
    custom: bool = False
    options: tuple[str, ...] = ()
    group: str = "information"
    created_at: str = field(default_factory=iso_now)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "label": self.label,
            "type": self.type,
            "fieldType": self.field_type,
            "description": "",
            "groupName": self.group,
            "options": [
                {"label": value.title(), "value": value, "displayOrder": i, "hidden": False}
                for i, value in enumerate(self.options)
            ],
            "displayOrder": -1,
            "calculated": False,
            "externalOptions": False,
            "hasUniqueValue": self.unique,
            "hidden": False,
            "hubspotDefined": not self.custom,
            "formField": not self.read_only,
            "modificationMetadata": {
                "archivable": self.custom,
                "readOnlyDefinition": not self.custom,
                "readOnlyValue": self.read_only,
            },
            "createdAt": self.created_at,
            "updatedAt": self.created_at,
            "archived": False,
        }


def _seed_properties(object_type: str) -> list[PropertyDef]:
    """The default property set: a realistic subset plus a custom unique ``external_id`` [H14]."""
    group = "companyinformation" if object_type == "companies" else "contactinformation"

    def prop(name: str, label: str, type_: str = "string", **kw: Any) -> PropertyDef:
        return PropertyDef(name, label, type_, FIELD_TYPES[type_], group=group, **kw)

    common = [
        prop("country", "Country/Region"),
        prop("lifecyclestage", "Lifecycle Stage", "enumeration", options=LIFECYCLE_STAGES),
        prop("hs_object_id", "Record ID", "number", read_only=True),
        prop("createdate", "Create Date", "datetime", read_only=True),
        prop("hs_lastmodifieddate", "Last Modified Date", "datetime", read_only=True),
        prop("external_id", "External ID", unique=True, custom=True),
    ]
    if object_type == "companies":
        return [
            prop("name", "Company name"),
            prop("domain", "Company Domain Name"),  # not unique [H14]
            prop("industry", "Industry"),
            prop("numberofemployees", "Number of Employees", "number"),
            prop("annualrevenue", "Annual Revenue", "number"),
            prop("city", "City"),
            *common,
        ]
    return [
        prop("email", "Email"),  # hasUniqueValue is false, yet contacts upsert by it [H13]
        prop("firstname", "First Name"),
        prop("lastname", "Last Name"),
        prop("jobtitle", "Job Title"),
        prop("company", "Company Name"),
        *common,
    ]


@dataclass
class CrmObject:
    """One stored company or contact."""

    id: str
    properties: dict[str, str]
    created_at: str
    updated_at: str
    archived: bool = False
    archived_at: str | None = None

    def to_json(self, names: Iterable[str] | None = None) -> dict[str, Any]:
        """The API shape ``{id, properties, createdAt, updatedAt, archived}``.

        With ``names``, only those properties plus the defaults (unset ones as ``null``).
        """
        if names is None:
            properties: dict[str, str | None] = dict(self.properties)
        else:
            wanted = dict.fromkeys([*DEFAULT_PROPERTIES, *names])
            properties = {name: self.properties.get(name) for name in wanted}
        data: dict[str, Any] = {
            "id": self.id,
            "properties": properties,
            "createdAt": self.created_at,
            "updatedAt": self.updated_at,
            "archived": self.archived,
        }
        if self.archived_at:
            data["archivedAt"] = self.archived_at
        return data


class RecordError(Exception):
    """One input failed; ``problems`` use HubSpot's ``{isValid, message, error, name}`` shape."""

    def __init__(self, problems: list[dict[str, Any]]):
        super().__init__("; ".join(p["message"] for p in problems))
        self.problems = problems


def _problem(name: str, code: str, message: str) -> dict[str, Any]:
    return {"isValid": False, "message": message, "error": code, "name": name}


class ObjectStore:
    """Objects of one type, keyed by HubSpot id, with an index per unique property."""

    def __init__(self, object_type: str, next_id: Iterable[int]):
        self.object_type = object_type
        self.properties = {p.name: p for p in _seed_properties(object_type)}
        self.objects: dict[str, CrmObject] = {}
        self.index: dict[str, dict[str, str]] = {}
        #: How many objects were created holding each (property, normalised value).
        self.creations: Counter[tuple[str, str]] = Counter()
        self.rejections: list[tuple[str, str, str]] = []
        self._ids = iter(next_id)

    def key_properties(self) -> set[str]:
        """Properties an upsert may match on: unique-value ones, and ``email`` for contacts."""
        keys = {p.name for p in self.properties.values() if p.unique}
        return keys | {"email"} if self.object_type == "contacts" else keys

    def add_property(self, prop: PropertyDef) -> None:
        """Define a new property (at most 10 unique ones per object [H16])."""
        uniques = sum(p.unique for p in self.properties.values())
        if prop.unique and uniques >= MAX_UNIQUE_PROPERTIES:
            raise ValueError(f"{self.object_type} already has {uniques} unique properties")
        self.properties[prop.name] = prop

    @staticmethod
    def _key(name: str, value: str) -> str:
        return value.lower() if name == "email" else value

    def lookup(self, name: str, value: str) -> CrmObject | None:
        """The live (not archived) object whose key property ``name`` has ``value``."""
        if name == "hs_object_id":
            obj = self.objects.get(value)
            return obj if obj is not None and not obj.archived else None
        object_id = self.index.get(name, {}).get(self._key(name, value))
        return self.objects.get(object_id) if object_id else None

    def value_problems(self, values: dict[str, str]) -> list[dict[str, Any]]:
        """Per-property validation: existence, read-only, number/enum/email formats, rejections."""
        problems = []
        for name, value in values.items():
            prop = self.properties.get(name)
            if prop is None:
                problems.append(
                    _problem(name, "PROPERTY_DOESNT_EXIST", f'Property "{name}" does not exist')
                )
            elif prop.read_only:
                message = f'"{name}" is a read only property; its value cannot be set.'
                problems.append(_problem(name, "READ_ONLY_VALUE", message))
            elif value != "":  # an empty string clears a value [H2]
                problems += self._format_problems(prop, value)
            for rejected_name, rejected_value, message in self.rejections:
                if (rejected_name, rejected_value) == (name, value):
                    problems.append(_problem(name, "INVALID_VALUE", message))
        return problems

    def _format_problems(self, prop: PropertyDef, value: str) -> list[dict[str, Any]]:
        name = prop.name
        if prop.type == "number":
            try:
                float(value)
            except ValueError:
                return [_problem(name, "INVALID_NUMBER", f"{value} was not a valid number.")]
        if prop.type == "enumeration":  # internal values, multi-checkbox ';'-separated [H26]
            bad = [part for part in value.split(";") if part not in prop.options]
            if bad:
                allowed = ", ".join(prop.options)
                message = f"{bad[0]} was not one of the allowed options: [{allowed}]"
                return [_problem(name, "INVALID_OPTION", message)]
        if prop.type == "bool" and value not in ("true", "false"):
            return [_problem(name, "INVALID_BOOLEAN", f"{value} is not a valid boolean.")]
        if name == "email" and not _EMAIL.match(value):
            return [_problem(name, "INVALID_EMAIL", f"Email address {value} is invalid")]
        return []

    def upsert_problems(
        self, id_property: str, id_value: str, properties: dict[str, str]
    ) -> list[dict[str, Any]]:
        """What ``upsert`` would refuse in this input (changes nothing)."""
        values = {**properties, id_property: id_value}
        problems = self.value_problems(values)
        existing = self.lookup(id_property, id_value)
        for name in sorted(self.key_properties() & values.keys()):
            holder = self.lookup(name, values[name]) if values[name] else None
            if holder is not None and holder is not existing:
                message = f"{values[name]} is already the {name} of object {holder.id}"
                problems.append(_problem(name, "CONFLICTING_UNIQUE_VALUE", message))
        return problems

    def upsert(
        self, id_property: str, id_value: str, properties: dict[str, str]
    ) -> tuple[CrmObject, bool]:
        """Update the object matching ``id_property == id_value`` or create it [H13].

        Returns (object, created). Raises ``RecordError`` for invalid values or when a unique
        value already belongs to another object.
        """
        values = self._stored_values({**properties, id_property: id_value})
        problems = self.upsert_problems(id_property, id_value, properties)
        if problems:
            raise RecordError(problems)
        existing = self.lookup(id_property, id_value)
        now = iso_now()
        if existing is not None:
            self._unindex(existing)
            existing.properties.update(values)
            existing.properties["hs_lastmodifieddate"] = now
            existing.updated_at = now
            self._index(existing)
            return existing, False
        obj = self.create(values, now)
        return obj, True

    def create(self, values: dict[str, str], now: str | None = None) -> CrmObject:
        """Store a new object (no validation) and count its creation."""
        now = now or iso_now()
        object_id = str(next(self._ids))
        stamps = {"hs_object_id": object_id, "createdate": now, "hs_lastmodifieddate": now}
        obj = CrmObject(object_id, {**self._stored_values(values), **stamps}, now, now)
        self.objects[object_id] = obj
        self.creations.update((name, self._key(name, v)) for name, v in obj.properties.items())
        self._index(obj)
        return obj

    def archive(self, object_id: str) -> None:
        """Soft-delete [H11]: flag it archived and free its unique values."""
        obj = self.objects.get(object_id)
        if obj is None or obj.archived:
            return
        self._unindex(obj)
        obj.archived = True
        obj.archived_at = iso_now()

    def _stored_values(self, values: dict[str, str]) -> dict[str, str]:
        """What HubSpot keeps of written values: a contact's ``email`` lower-cased (emulator
        choice, as HubSpot shows it: ``Ann@X.com`` is stored and returned as ``ann@x.com``)."""
        if self.object_type == "contacts" and values.get("email"):
            return {**values, "email": values["email"].lower()}
        return values

    def create_count(self, name: str, value: str) -> int:
        """How many objects were created holding ``value`` in property ``name``."""
        return self.creations[(name, self._key(name, value))]

    def created_count(self, obj: CrmObject) -> int:
        """Creations sharing any unique value with ``obj`` (1 unless duplicates were made)."""
        counts = [
            self.create_count(name, obj.properties[name])
            for name in self.key_properties()
            if obj.properties.get(name)
        ]
        return max(counts, default=1)

    def _index(self, obj: CrmObject) -> None:
        for name in self.key_properties():
            if obj.properties.get(name):
                self.index.setdefault(name, {})[self._key(name, obj.properties[name])] = obj.id

    def _unindex(self, obj: CrmObject) -> None:
        for name in self.key_properties():
            if obj.properties.get(name):
                self.index.get(name, {}).pop(self._key(name, obj.properties[name]), None)
