"""In-memory Mailchimp audiences for ``FakeMailchimp``: merge fields and members per list.

Citations in brackets point to the Mailchimp source list in /work/shared/VENDORS.md
(section 1). This module has no lock of its own: ``FakeMailchimp`` calls it under the vendor's
state lock.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

#: Statuses a request may set [M10]; ``archived`` only appears on reads.
STATUSES = frozenset({"subscribed", "unsubscribed", "cleaned", "pending", "transactional"})
#: Opted-out members that must never be set back to ``subscribed`` by our connector.
COMPLIANCE_STATUSES = frozenset({"unsubscribed", "cleaned"})
MERGE_TYPES = frozenset(
    {"text", "number", "address", "phone", "date", "url", "imageurl", "radio", "dropdown"}
    | {"birthday", "zip"}
)  # [M20][M21]
ADDRESS_REQUIRED = ("addr1", "city", "state", "zip")  # missing parts cause errors [M22]
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def now_iso() -> str:
    """Mailchimp's timestamp format, e.g. ``2026-01-02T03:04:05+00:00``."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def subscriber_hash(email: str) -> str:
    """The member id: MD5 of the lower-cased email [M10]."""
    return hashlib.md5(email.lower().encode(), usedforsecurity=False).hexdigest()


class MemberError(Exception):
    """One member was rejected; ``violation`` is set when our connector must never do this."""

    def __init__(
        self,
        error: str,
        error_code: str = "ERROR_GENERIC",
        *,
        title: str = "Invalid Resource",
        field: str = "",
        field_message: str = "",
        violation: str | None = None,
    ):
        super().__init__(error)
        self.error = error
        self.error_code = error_code
        self.title = title
        self.field = field
        self.field_message = field_message
        self.violation = violation

    def to_json(self, email: str) -> dict[str, str]:
        """A batch ``errors[]`` entry (``error_code`` is unconfirmed [M8])."""
        return {
            "email_address": email,
            "error": self.error,
            "error_code": self.error_code,
            "field": self.field,
            "field_message": self.field_message,
        }


@dataclass
class MergeField:
    """One audience field, shaped like ``GET /lists/{id}/merge-fields`` [M20]."""

    merge_id: int
    tag: str
    name: str
    type: str = "text"
    required: bool = False
    choices: tuple[str, ...] = ()

    def to_json(self, list_id: str) -> dict[str, Any]:
        options: dict[str, Any] = {"size": 25} if self.type == "text" else {}
        if self.choices:
            options = {"choices": list(self.choices)}
        return {
            "merge_id": self.merge_id,
            "tag": self.tag,
            "name": self.name,
            "type": self.type,
            "required": self.required,
            "default_value": "",
            "public": True,
            "display_order": self.merge_id + 1,
            "options": options,
            "help_text": "",
            "list_id": list_id,
        }

    def problem(self, value: Any) -> str | None:
        """Why ``value`` does not fit this field, or ``None``."""
        if value == "":
            return None
        if self.type == "address":
            if not isinstance(value, dict):
                return "Please enter a complete address"
            missing = [part for part in ADDRESS_REQUIRED if not value.get(part)]
            return f"Address is missing {', '.join(missing)}" if missing else None
        if self.type == "number":
            try:
                float(value)
            except (TypeError, ValueError):
                return "Please enter a number"
            return None if not isinstance(value, bool) else "Please enter a number"
        if not isinstance(value, str):
            return f"Please enter a string, not {type(value).__name__}"
        if self.choices and value not in self.choices:
            return f"Please choose one of {', '.join(self.choices)}"
        return None


@dataclass
class Member:
    """One audience member."""

    email_address: str
    status: str
    merge_fields: dict[str, Any] = field(default_factory=dict)
    last_changed: str = field(default_factory=now_iso)
    # When the member was subscribed [M10]: set when its status becomes subscribed.
    timestamp_opt: str = ""
    email_type: str = "html"
    language: str = ""
    vip: bool = False
    tags: list[str] = field(default_factory=list)
    interests: dict[str, bool] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return subscriber_hash(self.email_address)

    def to_json(self, audience: Audience) -> dict[str, Any]:
        """The member shape of ``GET /lists/{id}/members/{hash}`` [M10]."""
        merge = {tag: self.merge_fields.get(tag, "") for tag in audience.merge_fields}
        full_name = f"{merge.get('FNAME', '')} {merge.get('LNAME', '')}".strip()
        return {
            "id": self.id,
            "email_address": self.email_address,
            "unique_email_id": self.id[:10],
            "contact_id": self.id,
            "full_name": full_name,
            "email_type": self.email_type,
            "status": self.status,
            "merge_fields": merge,
            "interests": dict(self.interests),
            "vip": self.vip,
            "language": self.language,
            "tags_count": len(self.tags),
            "tags": [{"id": i + 1, "name": tag} for i, tag in enumerate(self.tags)],
            "last_changed": self.last_changed,
            "timestamp_signup": "",
            "timestamp_opt": self.timestamp_opt,
            "list_id": audience.id,
        }


class Audience:
    """One list: merge fields by tag, members by subscriber hash, permanently deleted hashes."""

    def __init__(self, list_id: str, name: str):
        self.id = list_id
        self.name = name
        self.merge_fields: dict[str, MergeField] = {}
        self.members: dict[str, Member] = {}
        self.forgotten: set[str] = set()
        self.creations: Counter[str] = Counter()
        for tag, label, type_ in (
            ("FNAME", "First Name", "text"),
            ("LNAME", "Last Name", "text"),
            ("PHONE", "Phone Number", "phone"),
            ("COMPANY", "Company", "text"),
            ("COUNTRY", "Country", "text"),
        ):
            self.add_merge_field(tag, type_, name=label)

    def add_merge_field(
        self,
        tag: str,
        type_: str = "text",
        required: bool = False,
        *,
        name: str | None = None,
        choices: tuple[str, ...] = (),
    ) -> MergeField:
        if type_ not in MERGE_TYPES:
            raise ValueError(f"unknown merge field type {type_!r}; Mailchimp has {MERGE_TYPES}")
        merge_field = MergeField(
            len(self.merge_fields) + 1, tag, name or tag.title(), type_, required, choices
        )
        self.merge_fields[tag] = merge_field
        return merge_field

    def live_member(self, email_or_hash: str) -> Member | None:
        """The member by email or hash, unless absent or archived."""
        member = self.member(email_or_hash)
        return member if member is not None and member.status != "archived" else None

    def member(self, email_or_hash: str) -> Member | None:
        """The member by email or hash (archived ones included) [M7]."""
        key = subscriber_hash(email_or_hash) if "@" in email_or_hash else email_or_hash.lower()
        return self.members.get(key)

    def _merge_problem(self, merge: dict[str, Any], new: bool, skip_validation: bool) -> None:
        for tag, value in merge.items():
            merge_field = self.merge_fields.get(tag)
            if merge_field is None:
                message = f'Merge field "{tag}" does not exist in this audience'
                raise MemberError(
                    "Your merge fields were invalid.", field=tag, field_message=message
                )
            problem = merge_field.problem(value)
            if problem:
                raise MemberError(
                    "Your merge fields were invalid.", field=tag, field_message=problem
                )
        if new and not skip_validation:  # required fields are enforced unless skipped [M7]
            for merge_field in self.merge_fields.values():
                if merge_field.required and merge.get(merge_field.tag) in (None, ""):
                    raise MemberError(
                        "Your merge fields were invalid.",
                        field=merge_field.tag,
                        field_message="Please enter a value",
                    )

    def upsert(
        self,
        data: dict[str, Any],
        *,
        update_existing: bool,
        skip_merge_validation: bool = False,
        sync_tags: bool = False,
    ) -> tuple[Member, bool]:
        """Add or update one member by email [M8][M10]; returns (member, created).

        Raises ``MemberError`` for an invalid email, bad merge fields, an existing member when
        ``update_existing`` is false, a permanently deleted address [M7], or an attempt to set
        ``subscribed`` on an unsubscribed/cleaned member (also a violation).
        """
        email = data["email_address"]
        if not _EMAIL.match(email):
            raise MemberError(f"{email} looks fake or invalid, please enter a real email address.")
        key = subscriber_hash(email)
        if key in self.forgotten:  # "the address can never be re-imported" [M7]
            raise MemberError(
                f"{email} was permanently deleted and cannot be re-imported. The contact must "
                "re-subscribe to get back on the list.",
                title="Forgotten Email Not Subscribed",
            )
        existing = self.live_member(key)
        merge = data.get("merge_fields") or {}
        self._merge_problem(merge, existing is None, skip_merge_validation)
        if existing is not None:
            if not update_existing:
                raise MemberError(
                    f"{email} is already a list member. Use PUT to insert or update list members.",
                    "ERROR_CONTACT_EXISTS",
                    title="Member Exists",
                )
            self._update(existing, data, sync_tags)
            return existing, False
        status = data.get("status") or data.get("status_if_new")
        if not status:
            raise MemberError(
                f"{email}: a new member needs status or status_if_new",
                field="status",
                field_message="Please enter a value",
                violation=f"{email}: a new member was sent without status or status_if_new [M10]",
            )
        member = Member(email, status)
        self.members[key] = member  # replaces an archived member: re-adding is allowed [M7]
        self._update(member, {**data, "status": status}, sync_tags)
        self.creations[key] += 1
        return member, True

    @staticmethod
    def _update(member: Member, data: dict[str, Any], sync_tags: bool) -> None:
        status = data.get("status")
        if status == "subscribed" and member.status in COMPLIANCE_STATUSES:
            raise MemberError(
                f"{member.email_address} is in a compliance state due to unsubscribe, bounce, "
                "or compliance review and cannot be subscribed.",
                title="Member In Compliance State",
                violation=(
                    f"{member.email_address}: tried to re-subscribe a member whose status is "
                    f"{member.status!r} (opt-outs must be honoured [M10])"
                ),
            )
        if status:
            if status == "subscribed" and member.status != "subscribed":
                member.timestamp_opt = now_iso()
            member.status = status
        member.merge_fields.update(data.get("merge_fields") or {})
        member.interests.update(data.get("interests") or {})
        for name in ("email_type", "language", "vip"):
            if name in data:
                setattr(member, name, data[name])
        tags = list(data.get("tags") or [])
        member.tags = tags if sync_tags else member.tags + [t for t in tags if t not in member.tags]
        member.last_changed = now_iso()
