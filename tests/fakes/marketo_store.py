"""The data behind ``FakeMarketo``: lead and company fields (as describe answers them), the
records, and the per-record outcome of a sync (created, updated, or skipped with reasons).

Citations point to the Marketo source list in /work/shared/VENDORS.md (section 5).
"""

from __future__ import annotations

import itertools
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MAX_STRING = 255  # String fields hold at most 255 characters [K15]
NUMBERS = {"integer", "float", "currency", "percent", "score"}


@dataclass
class FieldDef:
    """One field as describe2 (leads) or describe (companies) answers it [K4][K7][K15]."""

    name: str
    display_name: str
    data_type: str  # string, text, email, phone, url, integer, float, currency, boolean, ...
    updateable: bool = True
    length: int | None = None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "name": self.name,
            "displayName": self.display_name,
            "dataType": self.data_type,
            "updateable": self.updateable,
            "crmManaged": False,
        }
        if self.length is not None:
            data["length"] = self.length
        return data

    def problem(self, value: Any) -> str | None:
        """Why Marketo would skip a record for this value (code 1003 [K6]), or None."""
        if value is None or value == "":
            return None
        kind = self.data_type
        text = str(value)
        if kind in NUMBERS:
            if isinstance(value, bool):
                return f"Value for field '{self.name}' is not a number"
            try:
                number = float(text)
            except ValueError:
                return f"Value for field '{self.name}' is not a number"
            if kind == "integer" and number != int(number):
                return f"Value for field '{self.name}' is not an integer"
        elif kind == "boolean":
            if not isinstance(value, bool) and text.lower() not in ("true", "false"):
                return f"Value for field '{self.name}' is not a boolean"
        elif kind == "date":
            if not _DATE.match(text):
                return f"Value for field '{self.name}' is not a date (YYYY-MM-DD) [K15]"
        elif kind == "datetime":
            try:
                moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
            except ValueError:
                return f"Value for field '{self.name}' is not a W3C date-time [K15]"
            if moment.tzinfo is None:
                return f"Value for field '{self.name}' has no time zone offset [K15]"
        elif kind == "email":
            if not text.isascii():
                return f"Value for field '{self.name}' is not ASCII [K4]"
            if not _EMAIL.match(text):
                return f"Value for field '{self.name}' is not an email address"
        elif kind == "string" and len(text) > (self.length or MAX_STRING):
            return f"Value for field '{self.name}' exceeds {self.length or MAX_STRING} characters"
        return None


def _f(name: str, label: str, data_type: str = "string", **kwargs) -> FieldDef:
    length = MAX_STRING if data_type in ("string", "email", "phone", "url") else None
    return FieldDef(name, label, data_type, length=kwargs.pop("length", length), **kwargs)


def lead_fields() -> dict[str, FieldDef]:
    """Standard lead fields of a new instance (a subset); ``unsubscribed`` is how Marketo
    records an opt-out [K4]."""
    fields = [
        _f("id", "Id", "integer", updateable=False),
        _f("email", "Email Address", "email"),
        _f("firstName", "First Name"),
        _f("lastName", "Last Name"),
        _f("title", "Job Title"),
        _f("company", "Company Name"),
        _f("phone", "Phone Number", "phone"),
        _f("website", "Website", "url"),
        _f("country", "Country"),
        _f("city", "City"),
        _f("industry", "Industry"),
        _f("numberOfEmployees", "Num Employees", "integer"),
        _f("annualRevenue", "Annual Revenue", "currency"),
        _f("leadScore", "Lead Score", "score"),
        _f("externalCompanyId", "External Company Id"),
        _f("unsubscribed", "Unsubscribed", "boolean"),
        _f("dateOfBirth", "Date of Birth", "date"),
        _f("createdAt", "Created At", "datetime", updateable=False),
        _f("updatedAt", "Updated At", "datetime", updateable=False),
    ]
    return {f.name: f for f in fields}


def company_fields() -> dict[str, FieldDef]:
    fields = [
        _f("id", "Id", "integer", updateable=False),
        _f("externalCompanyId", "External Company Id"),
        _f("company", "Company Name"),
        _f("website", "Website", "url"),
        _f("industry", "Industry"),
        _f("numberOfEmployees", "Num Employees", "integer"),
        _f("annualRevenue", "Annual Revenue", "currency"),
        _f("billingCountry", "Billing Country"),
        _f("billingCity", "Billing City"),
        _f("createdAt", "Created At", "datetime", updateable=False),
        _f("updatedAt", "Updated At", "datetime", updateable=False),
    ]
    return {f.name: f for f in fields}


def now_iso() -> str:
    """Now as Marketo writes it (``time.time()``: a test's fake clock moves it)."""
    moment = datetime.fromtimestamp(time.time(), UTC).replace(microsecond=0)
    return moment.isoformat().replace("+00:00", "Z")


class Skip(Exception):
    """A record Marketo skips, with its reason code and message [K6]."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code, self.message = code, message

    def to_json(self) -> list[dict[str, str]]:
        return [{"code": self.code, "message": self.message}]


@dataclass
class ObjectStore:
    """Leads or companies: records by id, found by a searchable (or dedupe) field."""

    kind: str  # "lead" or "company"
    fields: dict[str, FieldDef]
    searchable: list[str]  # fields a lookup may use [K4][K7]
    records: dict[int, dict[str, Any]] = field(default_factory=dict)
    creations: Counter = field(default_factory=Counter)  # (field, value) -> times created
    # (field, value) -> (code, message): records Marketo will skip (a test provokes it).
    refused: dict[tuple[str, str], tuple[str, str]] = field(default_factory=dict)
    ids: itertools.count = field(default_factory=lambda: itertools.count(1001))

    @staticmethod
    def norm(name: str, value: Any) -> str:
        """E-mail addresses are matched whatever their case (emulator choice: VENDORS.md
        does not say; Marketo's own de-duplication ignores case)."""
        text = "" if value is None else str(value)
        return text.lower() if name == "email" else text

    def find(self, name: str, value: Any) -> list[dict[str, Any]]:
        key = self.norm(name, value)
        return [r for r in self.records.values() if self.norm(name, r.get(name)) == key]

    def add(self, values: dict[str, Any], *, match: str) -> dict[str, Any]:
        record_id = next(self.ids)
        now = now_iso()
        record = {"id": record_id, **values, "createdAt": now, "updatedAt": now}
        self.records[record_id] = record
        self.creations[(match, self.norm(match, values.get(match)))] += 1
        return record

    def check(self, values: dict[str, Any], *, match: str = "") -> None:
        """Skip a record with an unknown field (1006), a field that cannot be written (the
        lookup field only finds the record: ``id`` may be one), or a value the field does not
        take (1003) [K6]."""
        for name, value in values.items():
            spec = self.fields.get(name)
            if spec is None:
                raise Skip("1006", f"Field '{name}' not found")
            if not spec.updateable and name != match:
                raise Skip("1003", f"Field '{name}' is not updateable")
            problem = spec.problem(value)
            if problem:
                raise Skip("1003", problem)
        for (name, value), (code, message) in self.refused.items():
            if self.norm(name, values.get(name)) == self.norm(name, value):
                raise Skip(code, message)

    def sync(self, values: dict[str, Any], *, action: str, match: str) -> tuple[str, int]:
        """Create or update one record by ``match`` (``action`` as Sync Leads / Sync Companies
        take it [K4][K7]); (status, id), or Skip."""
        if match not in values or values.get(match) in (None, ""):
            raise Skip("1003", f"Value for lookup field '{match}' is missing")
        self.check(values, match=match)
        found = self.find(match, values[match])
        if len(found) > 1:
            raise Skip("1007", "Multiple records match the lookup criteria")
        missing, exists = self._codes()
        if found:
            if action == "createOnly":
                raise Skip(exists, f"{self.kind.capitalize()} already exists")
            record = found[0]
            record.update(values)
            record["updatedAt"] = now_iso()
            return "updated", record["id"]
        if action == "updateOnly":
            raise Skip(missing, f"{self.kind.capitalize()} not found")
        return "created", self.add(values, match=match)["id"]

    def _codes(self) -> tuple[str, str]:
        """Marketo's codes for "not found" and "already exists": 1004/1005 for leads [K6];
        1013 "Object not found" and 1017 "Object already exists" for companies (emulator
        choice, from Marketo's error-code page; VENDORS.md lists the lead ones)."""
        return ("1004", "1005") if self.kind == "lead" else ("1013", "1017")
