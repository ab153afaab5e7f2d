"""In-memory Salesforce org data for ``FakeSalesforce``: object describes, records, and the
one write path (create / update / upsert / delete) both the REST collections and the Bulk API
2.0 jobs use.

Citations in brackets point to the Salesforce source list in /work/shared/VENDORS.md (section 4).
What the documentation does not settle is marked "emulator choice". No lock of its own:
``FakeSalesforce`` calls it under the vendor's state lock.
"""

from __future__ import annotations

import itertools
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
# Key prefixes of the objects' 18-character ids.
PREFIXES = {"Account": "001", "Contact": "003", "Lead": "00Q"}
TEXT_TYPES = {"string", "textarea", "email", "phone", "url", "picklist", "multipicklist", "id"}
NUMBER_TYPES = {"int", "double", "currency", "percent"}


def iso_now() -> str:
    """Salesforce's date-time format: 2026-01-02T03:04:05.000+0000."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000+0000")


class RecordError(Exception):
    """One record refused: ``statusCode``, message and the fields at fault."""

    def __init__(self, code: str, message: str, fields: list[str] | None = None):
        super().__init__(message)
        self.code, self.message, self.fields = code, message, list(fields or [])

    def to_json(self) -> dict[str, Any]:
        return {"statusCode": self.code, "message": self.message, "fields": self.fields}


@dataclass
class FieldDef:
    """One field of a describe (``GET .../sobjects/{name}/describe``), the attributes we use."""

    name: str
    type: str = "string"
    label: str = ""
    length: int = 255
    external_id: bool = False
    unique: bool = False
    createable: bool = True
    updateable: bool = True
    nillable: bool = True
    defaulted: bool = False  # defaultedOnCreate
    custom: bool = False
    picklist: tuple[str, ...] = ()
    restricted: bool = False  # restrictedPicklist
    reference_to: tuple[str, ...] = ()
    relationship: str = ""  # relationshipName of a reference field

    @property
    def required(self) -> bool:
        """Required on create: not nillable, createable, no default [S28] (emulator reading)."""
        return not self.nillable and self.createable and not self.defaulted

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "label": self.label or self.name.replace("__c", "").replace("_", " "),
            "type": self.type,
            "length": self.length if self.type in TEXT_TYPES else 0,
            "externalId": self.external_id,
            "unique": self.unique,
            "idLookup": self.external_id or self.name in ("Id", "Email"),
            "caseSensitive": False,
            "createable": self.createable,
            "updateable": self.updateable,
            "nillable": self.nillable,
            "defaultedOnCreate": self.defaulted,
            "custom": self.custom,
            "calculated": False,
            "picklistValues": [
                {"active": True, "defaultValue": False, "label": v, "validFor": None, "value": v}
                for v in self.picklist
            ],
            "restrictedPicklist": self.restricted,
            "referenceTo": list(self.reference_to),
            "relationshipName": self.relationship or None,
            "soapType": "xsd:string",
        }


def _system_fields() -> list[FieldDef]:
    return [
        FieldDef("Id", "id", length=18, createable=False, updateable=False, nillable=False,
                 defaulted=True),
        FieldDef("IsDeleted", "boolean", createable=False, updateable=False, nillable=False,
                 defaulted=True),
        FieldDef("CreatedDate", "datetime", createable=False, updateable=False, nillable=False,
                 defaulted=True),
        FieldDef("LastModifiedDate", "datetime", createable=False, updateable=False,
                 nillable=False, defaulted=True),
    ]  # fmt: skip


STAGES = ("lead", "opportunity", "customer", "evangelist", "subscriber")
INDUSTRIES = ("Agriculture", "Banking", "Education", "Manufacturing", "Retail", "Technology")


def standard_objects() -> dict[str, list[FieldDef]]:
    """Account, Contact and Lead with the standard fields a sync uses, and one custom external
    id field each (``External_Id__c``; the org's admin creates it: Setting up)."""
    ext = {"external_id": True, "unique": True, "custom": True, "length": 80}
    stage = {"type": "picklist", "picklist": STAGES, "restricted": True, "custom": True}
    opt_out = {"type": "boolean", "nillable": False, "defaulted": True}
    return {
        "Account": [
            *_system_fields(),
            FieldDef("Name", nillable=False),
            FieldDef("Website", "url"),
            FieldDef("Industry", "picklist", picklist=INDUSTRIES),
            FieldDef("NumberOfEmployees", "int"),
            FieldDef("AnnualRevenue", "currency"),
            FieldDef("BillingCountry"),
            FieldDef("BillingCity"),
            FieldDef("External_Id__c", **ext),
            FieldDef("Lifecycle_Stage__c", **stage),
        ],
        "Contact": [
            *_system_fields(),
            FieldDef("FirstName", length=40),
            FieldDef("LastName", length=80, nillable=False),
            FieldDef("Email", "email", length=80),
            FieldDef("Title", length=128),
            FieldDef("MailingCountry"),
            FieldDef("HasOptedOutOfEmail", **opt_out),
            FieldDef("AccountId", "reference", length=18, reference_to=("Account",),
                     relationship="Account"),
            FieldDef("External_Id__c", **ext),
            FieldDef("Lifecycle_Stage__c", **stage),
        ],
        "Lead": [
            *_system_fields(),
            FieldDef("FirstName", length=40),
            FieldDef("LastName", length=80, nillable=False),
            FieldDef("Company", nillable=False),
            FieldDef("Email", "email", length=80),
            FieldDef("Title", length=128),
            FieldDef("Country"),
            FieldDef("Status", "picklist", nillable=False, defaulted=True,
                     picklist=("Open - Not Contacted", "Working - Contacted", "Qualified")),
            FieldDef("HasOptedOutOfEmail", **opt_out),
            FieldDef("IsConverted", "boolean", createable=False, updateable=False,
                     nillable=False, defaulted=True),
            FieldDef("ConvertedContactId", "reference", length=18, createable=False,
                     updateable=False, reference_to=("Contact",)),
            FieldDef("External_Id__c", **ext),
            FieldDef("Lifecycle_Stage__c", **stage),
        ],
    }  # fmt: skip


@dataclass
class ObjectStore:
    """One sObject type: its fields and its records (id -> field values)."""

    name: str
    fields: dict[str, FieldDef]
    prefix: str
    ids: itertools.count
    records: dict[str, dict[str, Any]] = field(default_factory=dict)
    created: Counter = field(default_factory=Counter)  # (field, value) -> creations
    # Validation rules: (field, value, message): a write setting field to value is refused.
    rejections: list[tuple[str, str, str]] = field(default_factory=list)
    # Row locks held by someone else: a write to one of these ids fails UNABLE_TO_LOCK_ROW.
    locked: set[str] = field(default_factory=set)
    # field -> lower-cased value -> ids, built for a field when it is first matched on, kept
    # by every write (reindex): a 50,000-row job matches in linear time, not quadratic.
    index: dict[str, dict[str, set[str]]] = field(default_factory=dict)

    @property
    def custom(self) -> bool:
        return self.name.endswith("__c")

    def new_id(self) -> str:
        return f"{self.prefix}{next(self.ids):012d}AAA"

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "label": self.name.replace("__c", ""),
            "custom": self.custom,
            "createable": True,
            "updateable": True,
            "deletable": True,
            "keyPrefix": self.prefix,
            "fields": [f.to_json() for f in self.fields.values()],
        }

    def live(self):
        return (r for r in self.records.values() if not r["IsDeleted"])

    def matching(self, name: str, value: Any) -> list[dict[str, Any]]:
        """Live records whose ``name`` equals ``value`` (text: case-insensitive, as unique
        external ids and e-mail addresses compare by default [S1] - emulator choice), oldest
        first."""
        if value is None:
            return []
        ids = sorted(self._index(name).get(str(value).lower(), ()))
        return [r for r in map(self.records.__getitem__, ids) if not r["IsDeleted"]]

    def _index(self, name: str) -> dict[str, set[str]]:
        if name not in self.index:
            built: dict[str, set[str]] = {}
            for record in self.records.values():
                if record.get(name) is not None:
                    built.setdefault(str(record[name]).lower(), set()).add(record["Id"])
            self.index[name] = built
        return self.index[name]

    def reindex(self, record: dict[str, Any], values: dict[str, Any]) -> None:
        """Before ``record`` takes ``values``: the indexes follow (call it for every write)."""
        record_id = record["Id"]
        for name, by_value in self.index.items():
            if name not in values:
                continue
            if record.get(name) is not None:
                by_value.get(str(record[name]).lower(), set()).discard(record_id)
            if values[name] is not None:
                by_value.setdefault(str(values[name]).lower(), set()).add(record_id)


class Org:
    """The org: its objects, and the write semantics every API shares."""

    def __init__(self) -> None:
        self.ids = itertools.count(1)
        self.objects: dict[str, ObjectStore] = {}
        for name, fields in standard_objects().items():
            self.add_object(name, fields)

    def add_object(self, name: str, fields: list[FieldDef], prefix: str = "") -> ObjectStore:
        prefix = prefix or PREFIXES.get(name) or f"a0{len(self.objects)}"
        store = ObjectStore(name, {f.name: f for f in fields}, prefix, self.ids)
        self.objects[name] = store
        return store

    def get(self, name: str) -> ObjectStore | None:
        return self.objects.get(name)

    # --- values -------------------------------------------------------------------------------
    def coerce(self, spec: FieldDef, value: Any, *, csv: bool) -> Any:
        """``value`` as stored, or RecordError. JSON values must have the field's JSON type;
        CSV values are text (``#N/A`` sets null [S12])."""
        if csv:
            if value == "#N/A":
                value = None
            elif spec.type == "boolean":
                if value.lower() not in ("true", "false"):
                    raise RecordError(
                        "INVALID_TYPE_ON_FIELD_IN_RECORD",
                        f"{spec.name}: value not of required type: {value}",
                        [spec.name],
                    )
                value = value.lower() == "true"
            elif spec.type in NUMBER_TYPES:
                try:
                    value = int(value) if spec.type == "int" else float(value)
                except ValueError:
                    raise RecordError(
                        "INVALID_TYPE_ON_FIELD_IN_RECORD",
                        f"{spec.name}: value not of required type: {value}",
                        [spec.name],
                    ) from None
        if value is None:
            if not spec.nillable:
                raise RecordError(
                    "REQUIRED_FIELD_MISSING", f"Required fields are missing: [{spec.name}]",
                    [spec.name],
                )  # fmt: skip
            return None
        if spec.type in ("date", "datetime"):
            text = str(value)
            try:
                if spec.type == "date":
                    date.fromisoformat(text)
                else:
                    datetime.fromisoformat(text.replace("Z", "+00:00"))
            except ValueError:
                raise RecordError(
                    "INVALID_TYPE_ON_FIELD_IN_RECORD",
                    f"{spec.name}: value not of required type: {text}",
                    [spec.name],
                ) from None
        if spec.type == "email" and not _EMAIL.match(str(value)):
            raise RecordError(
                "INVALID_EMAIL_ADDRESS", f"{spec.name}: invalid email address: {value}",
                [spec.name],
            )  # fmt: skip
        if spec.type in TEXT_TYPES and len(str(value)) > spec.length:
            raise RecordError(
                "STRING_TOO_LONG",
                f"{spec.name}: data value too large: {str(value)[:40]} (max length={spec.length})",
                [spec.name],
            )
        if spec.type == "picklist" and spec.restricted and value not in spec.picklist:
            raise RecordError(
                "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                f"{spec.name}: bad value for restricted picklist field: {value}",
                [spec.name],
            )
        return value

    def resolve(self, store: ObjectStore, relationship: str, ext_field: str, value: Any):
        """A relationship by external id (``"Account": {"External_Id__c": "C-1"}`` in JSON,
        the column ``Account.External_Id__c`` in CSV [S1][S12]): (reference field, the Id)."""
        spec = next((f for f in store.fields.values() if f.relationship == relationship), None)
        if spec is None:
            raise RecordError("INVALID_FIELD", f"No such relation '{relationship}'", [relationship])
        target = self.objects[spec.reference_to[0]]
        found = target.matching(ext_field, value)
        if not found:
            raise RecordError(
                "INVALID_FIELD",
                f"Foreign key external ID: {value} not found for field {ext_field} in entity "
                f"{target.name}",
                [spec.name],
            )
        if len(found) > 1:
            raise RecordError(
                "DUPLICATE_EXTERNAL_ID",
                f"Foreign key external ID: {value} matches more than one {target.name}",
                [spec.name],
            )
        return spec.name, found[0]["Id"]

    def values(self, store: ObjectStore, data: dict[str, Any], *, csv: bool, create: bool):
        """The stored values of one record's fields (``data``: field or relationship -> value).
        Unknown fields were refused as a whole request before (the caller's shape check)."""
        out: dict[str, Any] = {}
        for name, value in data.items():
            if "." in name or isinstance(value, dict):
                relationship, ext_field = (
                    name.split(".", 1) if "." in name else (name, next(iter(value), ""))
                )
                ext_value = value if "." in name else value.get(ext_field)
                if csv and ext_value in ("", None):
                    continue
                ref, ref_id = self.resolve(store, relationship, ext_field, ext_value)
                out[ref] = ref_id
                continue
            spec = store.fields[name]
            if csv and value == "":
                continue  # an empty CSV cell leaves the field as it is (emulator reading [S12])
            if not (spec.createable if create else spec.updateable):
                raise RecordError(
                    "INVALID_FIELD_FOR_INSERT_UPDATE",
                    f"Unable to create/update fields: {name}. Please check the security "
                    "settings of this field and verify that it is read/write for your profile "
                    "or permission set.",
                    [name],
                )
            out[name] = self.coerce(spec, value, csv=csv)
        for rule_field, rule_value, message in store.rejections:
            if str(out.get(rule_field)) == rule_value:
                raise RecordError("FIELD_CUSTOM_VALIDATION_EXCEPTION", message, [rule_field])
        return out

    # --- writes -------------------------------------------------------------------------------
    def create(
        self, store: ObjectStore, values: dict[str, Any], *, check: bool = True
    ) -> dict[str, Any]:
        missing = [
            f.name for f in store.fields.values() if f.required and values.get(f.name) is None
        ]
        if missing and check:
            raise RecordError(
                "REQUIRED_FIELD_MISSING", f"Required fields are missing: [{', '.join(missing)}]",
                missing,
            )  # fmt: skip
        now = iso_now()
        record: dict[str, Any] = {
            f.name: (False if f.type == "boolean" else None) for f in store.fields.values()
        }
        record.update(values, Id=store.new_id(), IsDeleted=False, CreatedDate=now)
        record["LastModifiedDate"] = now
        if store.name == "Lead" and record.get("Status") is None:
            record["Status"] = "Open - Not Contacted"
        store.reindex({"Id": record["Id"]}, record)
        store.records[record["Id"]] = record
        for spec in store.fields.values():
            if spec.external_id and record.get(spec.name) is not None:
                store.created[(spec.name, str(record[spec.name]).lower())] += 1
        return record

    def update(self, store: ObjectStore, record: dict[str, Any], values: dict[str, Any]) -> None:
        if record["Id"] in store.locked:
            raise RecordError(
                "UNABLE_TO_LOCK_ROW", "unable to obtain exclusive access to this record", []
            )
        if store.name == "Lead" and record.get("IsConverted"):
            raise RecordError("CANNOT_UPDATE_CONVERTED_LEAD", "cannot reference converted lead", [])
        store.reindex(record, values)
        record.update(values)
        record["LastModifiedDate"] = iso_now()

    def upsert(
        self, store: ObjectStore, ext_field: str, data: dict[str, Any], *, csv: bool = False
    ) -> tuple[dict[str, Any], bool]:
        """Upsert one record by its external id [S1]: (the record, created)."""
        value = data.get(ext_field)
        if value in (None, ""):
            raise RecordError("MISSING_ARGUMENT", f"{ext_field} not specified", [ext_field])
        found = store.matching(ext_field, value)
        if len(found) > 1:
            # What one upsert answers with HTTP 300 [S1]; per record in a collection.
            ids = ", ".join(r["Id"] for r in found)
            raise RecordError(
                "DUPLICATE_EXTERNAL_ID",
                f"The external ID provided matches more than one record: {ids}",
                [ext_field],
            )
        if found:
            values = self.values(store, data, csv=csv, create=False)
            self.update(store, found[0], values)
            return found[0], False
        values = self.values(store, data, csv=csv, create=True)
        return self.create(store, values), True

    def delete(self, record_id: str) -> dict[str, Any] | None:
        """Move a record to the recycle bin [S16]; None if no live record has that id."""
        for store in self.objects.values():
            record = store.records.get(record_id)
            if record is not None and not record["IsDeleted"]:
                record["IsDeleted"] = True
                return record
        return None


# --- SOQL: the one query shape the connector sends ---------------------------------------------
_SOQL = re.compile(
    r"^SELECT\s+(?P<fields>[\w.]+(?:\s*,\s*[\w.]+)*)\s+FROM\s+(?P<object>\w+)\s+"
    r"WHERE\s+(?P<where>\w+)\s+IN\s+\((?P<values>.*)\)$",
    re.IGNORECASE | re.DOTALL,
)
_LITERAL = re.compile(r"\s*'((?:[^'\\]|\\.)*)'\s*(,|$)", re.DOTALL)


class QueryError(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code, self.message = code, message


def parse_soql(text: str) -> tuple[list[str], str, str, list[str]]:
    """``SELECT a, b FROM Obj WHERE f IN ('x', 'y')``: (fields, object, where field, values).
    Anything else is MALFORMED_QUERY (emulator choice: the connector sends nothing else)."""
    match = _SOQL.match(text.strip())
    if match is None:
        raise QueryError("MALFORMED_QUERY", f"unexpected query shape: {text[:200]}")
    values, rest = [], match["values"]
    while rest.strip():
        literal = _LITERAL.match(rest)
        if literal is None:
            raise QueryError("MALFORMED_QUERY", f"bad string literal near: {rest[:60]}")
        values.append(re.sub(r"\\(.)", r"\1", literal[1]))
        rest = rest[literal.end() :]
    fields = [name.strip() for name in match["fields"].split(",")]
    return fields, match["object"], match["where"], values
