"""Constant Contact (V3): contacts by e-mail address into the sync's lists, through the
asynchronous ``contacts_json_import`` activity.

Facts from ../shared/VENDORS.md §2:

- one global API root, ``https://api.cc.email/v3`` [C1][C2]; OAuth 2.0 only (``oauth.py``)
  [C3]; ``Authorization: Bearer`` [C10];
- ``POST /activities/contacts_json_import`` with ``import_data`` (contacts keyed ``email``,
  ``first_name``..., custom fields as ``cf:<name>``, at most 25 a contact) and ``list_ids``;
  at most 40,000 contacts and under 4 MB a request: contacts beyond either are silently not
  processed [C12][C14], so each import here stays well inside both. Contacts match by
  address; an existing contact gets only what is sent, and its ``permission_to_send`` is left
  as it is: an import never opts an unsubscribed contact back in [C12]. We never send
  permission fields, and never use ``sign_up_form`` (which sets explicit permission) [C16];
- the import answers an ``activity_id``; ``GET /activities/{id}`` says when it ran and which
  rows it refused (``activities.py``) [C15];
- deletes: ``POST /activities/contact_delete`` (at most 500 ids) [C18]; a deleted contact
  stays in the account and comes back when imported again, so mirror archives;
- an opt-out made here: ``PUT /contacts/{id}`` with ``permission_to_send: unsubscribed`` and
  ``update_source: Contact`` [C19]. A PUT overwrites every core property left out [contacts_put],
  so the contact is read first and sent back whole: a read and a write per person;
- 4 requests a second and 10,000 a day per app, the day from 00:00 UTC; both answer 429, told
  apart by ``error_key`` ``throttled`` / ``quota_exceeded`` [C21], with no ``Retry-After``
  [C22]; errors are ``[{error_key, error_message}]`` [C23];
- no contact webhooks exist [C22][C24]: opt-outs are polled (contacts unsubscribed since the
  last look; the filter names are unconfirmed);
- custom fields: ``GET /contact_custom_fields`` with their types [C25], at most 100 [C26].
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from integrations.connectors import register
from integrations.connectors.base import (
    ConfigField,
    Connector,
    DailyQuota,
    DestinationField,
    DestinationObject,
    Outcome,
    OutRecord,
    RateSpec,
    RecordResult,
)
from integrations.connectors.constantcontact.activities import (
    QUERY_SLACK,
    ActivityReport,
    outcomes,
    settled_state,
)
from integrations.connectors.constantcontact.feedback import (
    PAGE,
    next_page,
    opted_out,
    unsubscribe,
)
from integrations.connectors.constantcontact.fields import (
    CUSTOM_PREFIX,
    cc_value,
    destination_fields,
)
from integrations.connectors.constantcontact.oauth import API_ROOT, SCOPES, ConstantContactConnect
from integrations.connectors.feedback import FeedbackEvent, occurred
from integrations.oauth.flows import AuthorizationCode
from mktintegration.errors import ConnectorError, ErrorKind
from mktintegration.http import Response

IMPORT_CONTACTS = 1_000  # contacts an import takes here (Constant Contact's own limit: 40,000)
IMPORT_BYTES = 3_500_000  # an import's body stays this far under the 4 MB limit [C12]
# The imports one batch may take: their activity ids (36-character UUIDs [C12]), joined by
# commas, are the batch's job reference, which holds 200 characters.
MAX_IMPORTS = 200 // 37
MAX_CUSTOM_FIELDS = 25  # per contact [C14]
THROTTLE_RETRIES = 2  # an opt-out throttled is sent again this many times
MAX_LISTS = 50  # lists one import adds its contacts to (emulator choice: unconfirmed)
DELETE_IDS = 500  # [C18]
OPTED_OUT_POLL = "opted-out"


def error_key(response: Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return ""
    if isinstance(body, list) and body and isinstance(body[0], dict):
        return str(body[0].get("error_key") or "")
    return ""


def next_utc_midnight(now: float) -> float:
    """When the daily count starts again: 00:00 UTC [C21]."""
    today = datetime.fromtimestamp(now, UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return (today + timedelta(days=1)).timestamp()


@register
class ConstantContact(Connector):
    slug = "constantcontact"
    label = "Constant Contact"
    auth_kinds = ("oauth2",)
    secret_fields = {"oauth2": ()}
    token_flows = {
        "oauth2": AuthorizationCode(
            backend=ConstantContactConnect,
            client="constantcontact",
            scopes=SCOPES,
            pkce=True,
            rotates_refresh_tokens=True,
        )
    }
    objects = {
        "contacts": DestinationObject(
            "contacts",
            "Contacts",
            IMPORT_CONTACTS,
            match_fields=("email",),
            requires=("list_ids",),
            personal_data=True,
            suppressible=True,
        )
    }
    default_rate = RateSpec(requests=4, per_seconds=1)  # [C21]
    daily_quota = DailyQuota(requests=10_000, timezone="UTC")  # [C21]
    allowed_hosts = ("api.cc.email",)
    requests_per_task = 1  # each write becomes an activity of its own
    standing_polls = (OPTED_OUT_POLL,)

    def base_url(self) -> str:
        return API_ROOT

    # --- requests and errors ---------------------------------------------------------------
    def call(self, method: str, path: str, *, what: str, **kwargs: Any) -> Response:
        response = self.send(method, self.url(path), **kwargs)
        if response.status_code == 429:
            key = error_key(response)
            if key == "quota_exceeded":
                now = time.time()
                raise self.quota_spent(
                    f"{self.label} {what}: the app's 10,000 requests of the day are spent "
                    "(quota_exceeded); they start again at 00:00 UTC",
                    resets_at=next_utc_midnight(now),
                )
            raise ConnectorError(
                f"{self.label} {what}: HTTP 429 {key or 'throttled'} (4 requests a second)",
                kind=ErrorKind.RATE_LIMITED,
                status=429,
                retry_after=1.0,
            )
        self.raise_for_status(response, what)
        return response

    @staticmethod
    def error_text(response: Response) -> str:
        try:
            body = response.json()
        except ValueError:
            return (response.text or "")[:300]
        if isinstance(body, list):
            return "; ".join(
                f"{e.get('error_key', '')}: {e.get('error_message', '')}"
                for e in body[:3]
                if isinstance(e, dict)
            )[:300]
        return Connector.error_text(response)

    def test_connection(self) -> str:
        summary = self.call("GET", "/account/summary", what="test").json()
        name = summary.get("organization_name") or "the account"
        return f"Connected to {name} ({summary.get('encoded_account_id', '?')})"

    # --- fields and lists ------------------------------------------------------------------
    def lists(self) -> dict[str, str]:
        """The account's contact lists: id -> name."""
        body = self.call("GET", "/contact_lists", what="lists", params={"limit": 1000}).json()
        return {
            str(item["list_id"]): str(item.get("name") or "")
            for item in body.get("lists") or ()
            if isinstance(item, dict) and item.get("list_id")
        }

    @classmethod
    def config_fields(cls, object_name: str) -> list[ConfigField]:
        return [
            ConfigField(
                "list_ids",
                "Lists",
                f"The account's contact lists the contacts are added to (1 to {MAX_LISTS}).",
                required=True,
                many=True,
                choices=lambda connector: connector.lists(),
            )
        ]

    def list_ids(self, destination_config: dict) -> list[str]:
        """The sync's lists, checked against the account's (a CONFIG error naming them)."""
        wanted = (destination_config or {}).get("list_ids")
        if not isinstance(wanted, list) or not wanted or len(wanted) > MAX_LISTS:
            raise ConnectorError(
                f"{self.label}: the sync's list_ids must be a list of 1 to {MAX_LISTS} list ids",
                kind=ErrorKind.CONFIG,
            )
        return [str(value) for value in wanted]

    def list_fields(self, object_name: str, destination_config: dict) -> list[DestinationField]:
        wanted = self.list_ids(destination_config)
        known = self.lists()
        unknown = [value for value in wanted if value not in known]
        if unknown:
            offered = ", ".join(f"{name} ({list_id})" for list_id, name in known.items())
            raise ConnectorError(
                f"{self.label}: no list {', '.join(unknown)} in the account; its lists: "
                f"{offered or 'none'}",
                kind=ErrorKind.CONFIG,
            )
        body = self.call(
            "GET", "/contact_custom_fields", what="custom fields", params={"limit": 100}
        ).json()
        return destination_fields(body.get("custom_fields") or ())

    def validate_record(self, object_name: str, record: OutRecord) -> str | None:
        custom = [key for key in record.payload if key.startswith(CUSTOM_PREFIX)]
        if len(custom) > MAX_CUSTOM_FIELDS:
            return (
                f"{len(custom)} custom fields: Constant Contact takes {MAX_CUSTOM_FIELDS} a contact"
            )
        return None

    def match_key(self, object_name: str, match_field: str, value: str) -> str:
        return value.lower()

    def match_key_sql(self, object_name: str, match_field: str, match_sql: str) -> str | None:
        return f"LOWER({match_sql})"

    def validate_record_sql(
        self, object_name: str, match_sql: str, *, fields: tuple[str, ...], pg: bool
    ) -> str | None:
        custom = [name for name in fields if name.startswith(CUSTOM_PREFIX)]
        return "1 = 1" if len(custom) <= MAX_CUSTOM_FIELDS else "1 = 0"

    # --- look-ups --------------------------------------------------------------------------
    def contact(self, address: str) -> dict | None:
        """The live contact with this address (any permission), core properties included."""
        body = self.call(
            "GET", "/contacts", what="look-up", params={"email": address, "limit": 1}
        ).json()
        for contact in body.get("contacts") or ():
            if isinstance(contact, dict) and not contact.get("deleted_at"):
                return contact
        return None

    def lookup(
        self,
        object_name: str,
        match_values: list[str],
        *,
        match_field: str,
        destination_config: dict,
    ) -> dict[str, str]:
        """One request per address: the API finds contacts by one exact address [C1]."""
        found = {}
        for value in dict.fromkeys(match_values):
            contact = self.contact(value)
            if contact is not None:
                found[value] = str(contact.get("contact_id") or "")
        return found

    def _pages(self, params: dict[str, Any]):
        """The contacts of a listing, page by page (the cursor in ``_links.next``)."""
        params = {**params, "limit": PAGE}
        while params:
            body = self.call("GET", "/contacts", what="contacts", params=params).json()
            yield [c for c in body.get("contacts") or () if isinstance(c, dict)]
            params = next_page(body)

    # --- writes ----------------------------------------------------------------------------
    def upsert(
        self,
        object_name: str,
        records: list[OutRecord],
        *,
        mode: str,
        match_field: str,
        destination_config: dict,
        idempotency_key: str,
    ) -> list[RecordResult]:
        """The records in import activities (ACCEPTED; ``poll`` reads their outcome). Create-
        and update-only look the addresses up first (the import itself always upserts)."""
        done, to_write = self.by_mode(
            object_name,
            records,
            mode=mode,
            match_field=match_field,
            destination_config=destination_config,
        )
        lists = self.list_ids(destination_config)
        chunks = list(self._chunks(to_write))
        if len(chunks) > MAX_IMPORTS:
            # Before anything is sent: the engine halves the batch and sends the halves.
            raise ConnectorError(
                f"{self.label}: these {len(to_write):,} contacts need {len(chunks)} imports "
                f"of at most {IMPORT_BYTES:,} bytes, and one batch follows at most "
                f"{MAX_IMPORTS}: they go in smaller batches",
                kind=ErrorKind.PERMANENT,
            )
        activities = [self._import(chunk, lists) for chunk in chunks]
        job = ",".join(activities)
        for record in to_write:
            done[record.key] = RecordResult(record.key, Outcome.ACCEPTED, job_ref=job)
        return [done[record.key] for record in records]

    @staticmethod
    def _row(record: OutRecord) -> dict[str, str]:
        row = {key: cc_value(value) for key, value in record.payload.items()}
        row["email"] = record.match_value
        return row

    def _chunks(self, records: list[OutRecord]):
        """Imports that each stay under the body limit (none is silently cut short)."""
        chunk: list[OutRecord] = []
        size = 0
        for record in records:
            row = len(json.dumps(self._row(record))) + 2
            if chunk and size + row > IMPORT_BYTES:
                yield chunk
                chunk, size = [], 0
            chunk.append(record)
            size += row
        if chunk:
            yield chunk

    def _import(self, records: list[OutRecord], lists: list[str]) -> str:
        body = {"import_data": [self._row(r) for r in records], "list_ids": lists}
        answer = self.call(
            "POST",
            "/activities/contacts_json_import",
            what="import",
            records=len(records),
            data=json.dumps(body),
            headers={"Content-Type": "application/json"},
        ).json()
        activity = str(answer.get("activity_id") or "")
        if not activity:
            raise ConnectorError(
                f"{self.label} import: no activity_id in the answer", kind=ErrorKind.TRANSIENT
            )
        return activity

    def poll(self, job_ref: str, records: list[OutRecord]) -> list[RecordResult] | None:
        report = ActivityReport()
        addresses = {record.match_value.lower() for record in records}
        for activity in filter(None, job_ref.split(",")):
            status = self.call("GET", f"/activities/{activity}", what="import status")
            report.add(status.json(), addresses)
            if report.running:
                return None
        created: dict[str, str] = {}
        if report.began is not None:
            since = (report.began - QUERY_SLACK).astimezone(UTC).isoformat()
            for page in self._pages({"created_after": since}):
                for contact in page:
                    address = str((contact.get("email_address") or {}).get("address") or "")
                    made = occurred(str(contact.get("created_at") or ""))
                    if address.lower() in addresses and made >= report.began:
                        created[address.lower()] = str(contact.get("contact_id") or "")
        return outcomes(records, report, created)

    def quota_requests(self, object_name: str, mode: str, records: int) -> int:
        """An import, two looks at it and a page of the contacts it created, per import;
        create- and update-only add a look-up per contact."""
        imports = -(-records // IMPORT_CONTACTS)
        per_import = 1 + 2 + -(-IMPORT_CONTACTS // PAGE)
        lookups = records if mode in ("create_only", "update_only") else 0
        return imports * per_import + lookups

    def delete(
        self, object_name: str, records: list[OutRecord], *, destination_config: dict
    ) -> list[RecordResult]:
        """Deleted contacts stay in the account (an import brings them back) [C18]."""
        results: dict[str, RecordResult] = {}
        ids: dict[str, str] = {}
        for record in records:
            contact_id = record.destination_id
            if not contact_id:
                contact = self.contact(record.match_value)
                contact_id = str((contact or {}).get("contact_id") or "")
            if contact_id:
                ids[record.key] = contact_id
            else:
                results[record.key] = RecordResult(
                    record.key, Outcome.DELETED, "", "no longer at Constant Contact"
                )
        keys = list(ids)
        for start in range(0, len(keys), DELETE_IDS):
            chunk = keys[start : start + DELETE_IDS]
            answer = self.call(
                "POST",
                "/activities/contact_delete",
                what="delete",
                records=len(chunk),
                json={"contact_ids": [ids[key] for key in chunk]},
            ).json()
            state = settled_state(self, str(answer.get("activity_id") or ""))
            for key in chunk:
                if state == "completed":
                    results[key] = RecordResult(key, Outcome.DELETED, ids[key])
                else:
                    message = f"the deletion at {self.label} is {state or 'unknown'}; sent again"
                    results[key] = RecordResult(key, Outcome.RETRY, ids[key], message)
        return [results[record.key] for record in records]

    # --- feedback (feedback.py) -------------------------------------------------------------
    def suppress(
        self, object_name: str, records: list[OutRecord], *, destination_config: dict
    ) -> list[RecordResult]:
        """Each contact read and written back unsubscribed (``update_source: Contact``: the
        person asked, elsewhere) [C19]. Imports never change the permission again."""
        return [self._paced(unsubscribe, record) for record in records]

    def _paced(self, action, record: OutRecord) -> RecordResult:
        """``action(self, record)``, sent again after the wait when Constant Contact throttles
        it. Opt-outs go person by person outside the engine's batches (whose back-off counts
        each 429), and requests paced to 4 a second can still arrive 5 in one second (the
        network, a busy host); a throttled request was not applied."""
        for attempt in range(THROTTLE_RETRIES + 1):
            try:
                return action(self, record)
            except ConnectorError as exc:
                if exc.kind != ErrorKind.RATE_LIMITED or attempt == THROTTLE_RETRIES:
                    raise
                time.sleep(max(exc.retry_after or 0.0, 1.0))
        raise AssertionError("unreachable")

    def poll_feedback(self, key: str, cursor: dict) -> tuple[list[FeedbackEvent], dict, bool]:
        if key != OPTED_OUT_POLL:
            raise ConnectorError(f"{self.label} cannot poll {key!r}", kind=ErrorKind.CONFIG)
        return opted_out(self, cursor)
