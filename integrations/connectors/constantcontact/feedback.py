"""Opt-outs both ways for Constant Contact: ours sent there, and theirs read back.

- Sent: ``PUT /contacts/{id}`` with ``permission_to_send: unsubscribed`` and ``update_source:
  Contact`` (a request the person made outside Constant Contact) [C19]. A PUT overwrites every
  core property it leaves out and keeps the subresources it leaves out [contacts_put], so the
  contact is read first and its core properties sent back as they were: a read and a write
  per person (Constant Contact has no bulk opt-out).
- Read back: Constant Contact has no contact webhooks [C22][C24], so the contacts unsubscribed
  since the last look are polled (``status=unsubscribed``, ``updated_after``; the filter names
  are unconfirmed in VENDORS.md).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

from integrations.connectors.base import Outcome, OutRecord, RecordResult
from integrations.connectors.feedback import FeedbackEvent, FeedbackKind, occurred
from mktintegration.errors import ConnectorError, ErrorKind

if TYPE_CHECKING:
    from integrations.connectors.constantcontact.connector import ConstantContact

PAGE = 500  # contacts a page of GET /contacts
POLL_OVERLAP_SECONDS = 60
# What a PUT must carry back so that nothing is cleared [contacts_put].
CORE_PROPERTIES = (
    "first_name",
    "last_name",
    "job_title",
    "company_name",
    "birthday_month",
    "birthday_day",
    "anniversary",
)
OPT_OUT_REASON = "Consent withdrawn"


def next_page(body: dict) -> dict[str, str]:
    """The query of a listing's next page, exactly as its ``_links.next.href`` gives it (the
    cursor stands for the whole listing), or {} on the last page."""
    href = ((body.get("_links") or {}).get("next") or {}).get("href") or ""
    return dict(parse_qsl(urlsplit(str(href)).query))


def unsubscribe(connector: ConstantContact, record: OutRecord) -> RecordResult:
    """One contact opted out of e-mail (UPDATED), or REJECTED when there is no such contact."""
    try:
        if record.destination_id:
            contact = connector.call(
                "GET", f"/contacts/{record.destination_id}", what="read contact"
            ).json()
        else:
            contact = connector.contact(record.match_value)
    except ConnectorError as exc:
        if exc.kind != ErrorKind.CONFIG:  # a 404 is CONFIG: no such contact
            raise
        contact = None
    if not contact:
        return RecordResult(record.key, Outcome.REJECTED, "", "not at Constant Contact")
    contact_id = str(contact.get("contact_id") or record.destination_id)
    email = contact.get("email_address") or {}
    body: dict[str, Any] = {key: contact[key] for key in CORE_PROPERTIES if key in contact}
    body["email_address"] = {
        "address": email.get("address") or record.match_value,
        "permission_to_send": "unsubscribed",
        "opt_out_reason": OPT_OUT_REASON,
    }
    body["update_source"] = "Contact"
    connector.call("PUT", f"/contacts/{contact_id}", what="unsubscribe", records=1, json=body)
    return RecordResult(record.key, Outcome.UPDATED, contact_id, "unsubscribed")


def opted_out(connector: ConstantContact, cursor: dict) -> tuple[list[FeedbackEvent], dict, bool]:
    """Contacts unsubscribed since the cursor, a page a pass; each one an unsubscribe from all
    e-mail. A pass starts a minute before the latest change the last one saw (events read
    twice are stored once: they are told apart by contact and opt-out time)."""
    since = str(cursor.get("since") or datetime.now(UTC).isoformat())
    params: dict[str, Any] = cursor.get("page") or {
        "status": "unsubscribed",
        "updated_after": since,
        "limit": PAGE,
    }
    body = connector.call("GET", "/contacts", what="opted-out poll", params=params).json()
    events = []
    latest = str(cursor.get("latest") or since)
    for contact in body.get("contacts") or ():
        if not isinstance(contact, dict):
            continue
        email = contact.get("email_address") or {}
        changed = str(email.get("opt_out_date") or contact.get("updated_at") or "")
        latest = max(latest, str(contact.get("updated_at") or ""))
        if email.get("permission_to_send") != "unsubscribed":
            continue
        events.append(
            FeedbackEvent(
                kind=FeedbackKind.UNSUBSCRIBE,
                occurred_at=occurred(changed),
                vendor_event="contact unsubscribed",
                raw=contact,
                event_id=f"{contact.get('contact_id')}:{changed}",
                email=str(email.get("address") or ""),
                all_email=True,
                detail=str(email.get("opt_out_reason") or "unsubscribed at Constant Contact"),
            )
        )
    page = next_page(body)
    if page:
        return events, {"since": since, "page": page, "latest": latest}, True
    start = occurred(latest) - timedelta(seconds=POLL_OVERLAP_SECONDS)
    return events, {"since": start.isoformat()}, False
