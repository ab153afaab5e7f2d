"""The data behind ``FakeConstantContact``: contact lists, custom fields, contacts and the
bulk activities (JSON import, delete) that change them.

Citations point to the Constant Contact source list in /work/shared/VENDORS.md (section 2).
Timestamps use ``time.time()`` (a test's fake clock moves them); an activity's progress uses
the monotonic clock, since it is wall time the vendor spends.
"""

from __future__ import annotations

import base64
import binascii
import copy
import json
import re
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

NEWSLETTER_LIST_ID = "3f1a0c52-7d7e-11ee-9f1c-fa163e5f4a01"
CUSTOMERS_LIST_ID = "3f1a0c52-7d7e-11ee-9f1c-fa163e5f4a02"
CORE = ("first_name", "last_name", "job_title", "company_name")
#: Core properties a PUT sets to null when the body leaves them out [C19].
PUT_CORE = (*CORE, "birthday_month", "birthday_day", "anniversary")
SUBRESOURCES = ("custom_fields", "list_memberships", "phone_numbers", "street_addresses")
PHONE_KINDS = {"phone": "other", "home_phone": "home", "work_phone": "work"}
#: Import columns -> the street address's fields (one ``home`` address, emulator choice).
ADDRESS_KEYS = {
    "street": "street",
    "city": "city",
    "state": "state",
    "zip": "postal_code",
    "country": "country",
}
#: The keys an import row may have besides ``cf:<name>`` [C12][C14].
IMPORT_KEYS = frozenset({"email", *CORE, *PHONE_KINDS, *ADDRESS_KEYS, "street2"})
PERMISSIONS = frozenset({"implicit", "explicit", "unsubscribed", "pending_confirmation"})
FIELD_TYPES = frozenset(
    {"string", "date", "datetime", "single_select", "currency", "text_area", "multi_select"}
    | {"number", "boolean"}
)  # [C25]
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_FIELD_NAMESPACE = uuid.UUID("6c0f3b4e-7d7e-11ee-9f1c-fa163e5f4a00")


# ISO 8601 in UTC [C1]; to the millisecond (emulator choice: CC does not say its resolution,
# and a connector must tell a contact created by an import from one made a moment before it).
STAMP = "%Y-%m-%dT%H:%M:%S.%fZ"


def now_iso() -> str:
    text = datetime.fromtimestamp(time.time(), UTC).strftime(STAMP)
    return text[:-4] + "Z"  # milliseconds


def stamp_time(text: str) -> datetime:
    """A timestamp the emulator wrote (``now_iso``) as a datetime."""
    return datetime.strptime(text.replace("Z", "000Z"), STAMP).replace(tzinfo=UTC)


def parse_time(text: str) -> datetime | None:
    """An ISO 8601 date or date-time (UTC when no offset is given), or None."""
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def encode_cursor(query: dict[str, str], after: list[str]) -> str:
    """A contacts cursor: the query and where the page ended (emulator choice: CC's is
    opaque)."""
    raw = json.dumps({"q": query, "after": after}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(token: str) -> tuple[dict[str, str], list[str]] | None:
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        return dict(data["q"]), list(data["after"])
    except (binascii.Error, ValueError, KeyError, TypeError):
        return None


def is_email(text: str) -> bool:
    return bool(_EMAIL.match(text))


def status_of(contact: dict) -> str:
    """The ``status`` filter a contact answers to: deleted, or its permission's (implicit and
    explicit are ``active``; emulator choice for the mapping)."""
    if "deleted_at" in contact:
        return "deleted"
    permission = contact["email_address"]["permission_to_send"]
    return "active" if permission in ("implicit", "explicit") else permission


@dataclass
class Activity:
    """One bulk activity [C10][C15]: ``initialized`` for the first half of ``job_seconds``,
    ``processing`` for the second, then ``completed`` (or ``failed``), applied at that moment
    (emulator choice: VENDORS.md gives no timings)."""

    activity_id: str
    kind: str  # "contacts_json_import" or "contact_delete"
    payload: dict[str, Any]
    started: float  # monotonic
    created_at: str
    updated_at: str
    state: str = "initialized"
    fail_reason: str = ""
    errors: list[dict[str, str]] = field(default_factory=list)
    total: int = 0
    done: int = 0

    def to_json(self) -> dict[str, Any]:
        percent = {"initialized": 0, "processing": 50}.get(self.state, 100)
        return {
            "activity_id": self.activity_id,
            "state": self.state,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "percent_done": percent,
            "activity_errors": list(self.errors),
            "status": {
                "items_total_count": self.total,
                "items_completed_count": self.done,
                "list_count": len(self.payload.get("list_ids", [])),
            },
            "_links": {"self": {"href": f"/v3/activities/{self.activity_id}"}},
        }


class Account:
    """One Constant Contact account: lists, custom fields, contacts and activities."""

    def __init__(self, job_seconds: float) -> None:
        self.job_seconds = job_seconds
        now = now_iso()
        self.lists: dict[str, dict[str, Any]] = {
            list_id: {"list_id": list_id, "name": name, "favorite": False}
            | {"created_at": now, "updated_at": now}
            for list_id, name in (
                (NEWSLETTER_LIST_ID, "Newsletter"),
                (CUSTOMERS_LIST_ID, "Customers"),
            )
        }
        self.fields: dict[str, dict[str, Any]] = {}  # by name
        self.contacts: dict[str, dict[str, Any]] = {}  # by contact_id
        self.by_address: dict[str, str] = {}  # lower-cased address -> contact_id
        self.rejected: dict[str, str] = {}  # lower-cased address -> reason
        self.creations: Counter[str] = Counter()  # lower-cased address -> contacts made with it
        self.activities: dict[str, Activity] = {}
        self.fail_next: list[str] = []  # reasons for the next activities to fail
        self.add_custom_field("company_size", "number")
        self.add_custom_field("region", "single_select", ("EMEA", "AMER", "APAC"))
        self.add_custom_field("health_score", "number")

    # -- lists and custom fields ------------------------------------------------------------
    def add_custom_field(self, name: str, type_: str, choices: tuple[str, ...] = ()) -> dict:
        """A custom field [C25]; ids are derived from the name so that they are stable."""
        if type_ not in FIELD_TYPES:
            raise ValueError(f"custom field type {type_!r} is not one of {sorted(FIELD_TYPES)}")
        now = now_iso()
        spec: dict[str, Any] = {
            "custom_field_id": str(uuid.uuid5(_FIELD_NAMESPACE, name)),
            "label": name.replace("_", " ").title(),
            "name": name,
            "type": type_,
            "created_at": now,
            "updated_at": now,
        }
        if choices:
            spec["choices"] = [
                {"choice_id": i, "choice_label": label} for i, label in enumerate(choices, 1)
            ]
        self.fields[name] = spec
        return spec

    # -- contacts ---------------------------------------------------------------------------
    def find(self, address: str) -> dict[str, Any] | None:
        """The contact with this address, deleted or not: matching ignores case [C12]."""
        contact_id = self.by_address.get(address.strip().lower())
        return None if contact_id is None else self.contacts[contact_id]

    def create(self, address: str, permission: str = "implicit") -> dict[str, Any]:
        now = now_iso()
        self.creations[address.strip().lower()] += 1
        contact: dict[str, Any] = {
            "contact_id": str(uuid.uuid4()),
            "email_address": {
                "address": address.strip().lower(),
                "permission_to_send": permission,
                "created_at": now,
                "updated_at": now,
            },
            **dict.fromkeys(PUT_CORE),
            "create_source": "Account",
            "created_at": now,
            "updated_at": now,
            "update_source": "Account",
            **{name: [] for name in SUBRESOURCES},
        }
        self.contacts[contact["contact_id"]] = contact
        self.by_address[contact["email_address"]["address"]] = contact["contact_id"]
        return contact

    def set_permission(self, contact: dict, permission: str, source: str, reason: Any) -> None:
        """Opt out (with the source, date and reason [C19]) or back in."""
        email = contact["email_address"]
        email["permission_to_send"] = permission
        email["updated_at"] = now_iso()
        for key in ("opt_out_source", "opt_out_date", "opt_out_reason"):
            email.pop(key, None)
        if permission == "unsubscribed":
            email.update(opt_out_source=source, opt_out_date=now_iso(), opt_out_reason=reason)

    def set_values(self, contact: dict, values: dict[str, str]) -> None:
        """Import-style values (``first_name``, ``home_phone``, ``cf:region``...) onto a contact;
        an empty string clears the property (emulator choice)."""
        for key, value in values.items():
            if key in CORE:
                contact[key] = value or None
            elif key in PHONE_KINDS:
                phones = [p for p in contact["phone_numbers"] if p["kind"] != PHONE_KINDS[key]]
                if value:
                    phones.append({"phone_number": value, "kind": PHONE_KINDS[key]})
                contact["phone_numbers"] = phones
            elif key.startswith("cf:"):
                field_id = self.fields[key[3:]]["custom_field_id"]
                kept = [v for v in contact["custom_fields"] if v["custom_field_id"] != field_id]
                if value:
                    kept.append({"custom_field_id": field_id, "value": value})
                contact["custom_fields"] = kept
        address = {ADDRESS_KEYS[k]: v for k, v in values.items() if k in ADDRESS_KEYS}
        if "street2" in values:  # one street line in V3: the second joins it (emulator choice)
            first = address.get("street", self.address(contact).get("street", ""))
            address["street"] = "\n".join(x for x in (first, values["street2"]) if x)
        if address:
            contact["street_addresses"] = [{"kind": "home", **self.address(contact), **address}]
        contact["updated_at"] = now_iso()

    @staticmethod
    def address(contact: dict) -> dict[str, str]:
        return dict(contact["street_addresses"][0]) if contact["street_addresses"] else {}

    def flatten(self, contact: dict) -> dict[str, Any]:
        """A contact as tests read it: import keys, ``cf:<name>``, permission, lists."""
        email = contact["email_address"]
        flat: dict[str, Any] = {
            "contact_id": contact["contact_id"],
            "email": email["address"],
            "permission_to_send": email["permission_to_send"],
            "opt_out_source": email.get("opt_out_source"),
            "opt_out_reason": email.get("opt_out_reason"),
            **{key: contact[key] for key in PUT_CORE},
            "lists": list(contact["list_memberships"]),
            "deleted": "deleted_at" in contact,
            **{k: contact[k] for k in ("created_at", "updated_at", "update_source")},
        }
        kinds = {kind: key for key, kind in PHONE_KINDS.items()}
        flat |= {kinds[p["kind"]]: p["phone_number"] for p in contact["phone_numbers"]}
        names = {f["custom_field_id"]: name for name, f in self.fields.items()}
        flat |= {f"cf:{names[v['custom_field_id']]}": v["value"] for v in contact["custom_fields"]}
        keys = {api: key for key, api in ADDRESS_KEYS.items()}
        flat |= {keys[k]: v for k, v in self.address(contact).items() if k in keys}
        return flat

    @staticmethod
    def present(contact: dict, include: set[str]) -> dict[str, Any]:
        """The contact as the API answers it: nulls left out, subresources only when asked for
        (as CC does; which subresources a GET includes is the ``include`` parameter's)."""
        body = {
            k: copy.deepcopy(v)
            for k, v in contact.items()
            if v is not None and (k not in SUBRESOURCES or k in include)
        }
        body["email_address"] = {k: v for k, v in body["email_address"].items() if v is not None}
        return body

    def apply_put(self, contact: dict, body: dict[str, Any]) -> None:
        """A PUT replaces the contact [C19]: core properties left out become null,
        subresources in the body replace the stored ones, those left out are kept."""
        sent, address = body["email_address"], body["email_address"]["address"].strip().lower()
        self.by_address.pop(contact["email_address"]["address"])
        contact["email_address"]["address"] = address
        self.by_address[address] = contact["contact_id"]
        permission = sent.get("permission_to_send")
        if permission and permission != contact["email_address"]["permission_to_send"]:
            reason = sent.get("opt_out_reason")
            self.set_permission(contact, permission, body["update_source"], reason)
        for key in PUT_CORE:
            contact[key] = body.get(key)
        for key in SUBRESOURCES:
            if key in body:
                contact[key] = copy.deepcopy(body[key])
        contact["update_source"] = body["update_source"]
        contact["updated_at"] = now_iso()

    # -- activities -------------------------------------------------------------------------
    def start(self, kind: str, payload: dict[str, Any], total: int) -> Activity:
        now = now_iso()
        activity = Activity(str(uuid.uuid4()), kind, payload, time.monotonic(), now, now)
        activity.total = total
        if self.fail_next:
            activity.fail_reason = self.fail_next.pop(0)
        self.activities[activity.activity_id] = activity
        self.advance()
        return activity

    def advance(self) -> None:
        """Move every activity on by the wall time since it started; apply finished ones in
        the order they were received."""
        now = time.monotonic()
        for activity in self.activities.values():
            if activity.state not in ("initialized", "processing"):
                continue
            elapsed = now - activity.started
            if elapsed < self.job_seconds / 2:
                continue
            state = "processing" if elapsed < self.job_seconds else self._finish(activity)
            if state != activity.state:
                activity.state, activity.updated_at = state, now_iso()

    def _finish(self, activity: Activity) -> str:
        if activity.fail_reason:
            activity.errors.append({"message": activity.fail_reason})
            return "failed"
        if activity.kind == "contacts_json_import":
            self._apply_import(activity)
        else:
            self._apply_delete(activity)
        return "completed"

    def _apply_import(self, activity: Activity) -> None:
        """Each row by address [C12]: a new one is created ``implicit``; an existing one (a
        deleted one comes back: emulator choice) gets the sent properties only and keeps its
        permission; an unsubscribed one keeps its lists too (emulator choice)."""
        list_ids = activity.payload["list_ids"]
        for number, row in enumerate(activity.payload["import_data"], 1):
            address = row["email"].strip()
            problem = self._row_problem(row)
            activity.done += 1
            if problem:
                activity.errors.append({"message": f"Row {number}: {problem} ({address})"})
                continue
            contact = self.find(address)
            if contact is None:
                contact = self.create(address)
            contact.pop("deleted_at", None)
            self.set_values(contact, {k: v for k, v in row.items() if k != "email"})
            contact["update_source"] = "Account"
            if contact["email_address"]["permission_to_send"] != "unsubscribed":
                lists = contact["list_memberships"]
                lists += [list_id for list_id in list_ids if list_id not in lists]

    def _row_problem(self, row: dict[str, str]) -> str | None:
        """Why a row fails: a bad address, a reason a test set, or a custom field value the
        field's type cannot hold (emulator choice: number and single_select are checked)."""
        address = row["email"].strip()
        if not is_email(address):
            return f"{address} is not a valid e-mail address"
        if address.lower() in self.rejected:
            return self.rejected[address.lower()]
        for key, value in row.items():
            spec = self.fields.get(key[3:]) if key.startswith("cf:") else None
            if spec is None or not value:
                continue
            if spec["type"] == "number" and not re.fullmatch(r"-?\d+(\.\d+)?", value):
                return f"{value!r} is not a number for custom field {spec['name']}"
            labels = [c["choice_label"] for c in spec.get("choices", [])]
            if spec["type"] == "single_select" and value not in labels:
                return f"{value!r} is not a choice of custom field {spec['name']}"
        return None

    def _apply_delete(self, activity: Activity) -> None:
        """Soft delete [C18]: ``deleted_at`` is set and ``status=deleted`` lists the contact."""
        for contact_id in activity.payload["contact_ids"]:
            activity.done += 1
            contact = self.contacts.get(contact_id)
            if contact is None:
                activity.errors.append({"message": f"Contact not found ({contact_id})"})
            elif "deleted_at" not in contact:
                contact["deleted_at"] = contact["updated_at"] = now_iso()
