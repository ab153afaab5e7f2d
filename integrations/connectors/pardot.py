"""Account Engagement (Pardot) API v5: prospects by e-mail address, never opted back in.

Facts from ../shared/VENDORS.md §6: ``https://pi.pardot.com/api/v5/objects/...``
(``pi.demo.pardot.com`` for developer orgs and sandboxes) [A1][A2]; Salesforce OAuth with the
``pardot_api`` scope, and on every request ``Authorization: Bearer`` **and**
``Pardot-Business-Unit-Id`` (18 characters, starting ``0Uv``) [A2][A3]; the one retry-safe
write is ``POST .../prospects/do/upsertLatestByEmail`` (``matchEmail``, ``prospect``,
``fields``, ``secondaryDeletedSearch``), one prospect per call [A1][A4][A5]; ``DELETE
.../prospects/{id}`` moves a prospect to the recycle bin [A1]; reads need ``fields`` [A3];
custom fields end in ``__c`` [A5]; errors are ``{"code": n, "message": ...}`` in the body with
a coarse HTTP status [A3][A7]: 66 concurrency (wait, retry), 122 daily limit (stop until the
next day), 184 invalid access token (renew once) [A10], 150-154 validation (do not retry).

Limits as budgets: the connection's rate budget (default 5 requests a second, which with
answers under a second keeps Pardot's 5 concurrent requests [A9]) is shared by every worker; a
code 66 holds it for ``CONCURRENCY_WAIT`` seconds and the batch is sent again at no attempt's
cost; a code 122 holds it until the next day (UTC midnight) and the records wait, deferred,
never failed.

Opt-outs: ``optedOut`` is only ever sent as ``true`` (a withdrawn consent, ``opt_out_field``);
a false or empty value is left out of the body, so a prospect who opted out at Pardot is never
opted back in by a sync.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar
from urllib.parse import quote, urlencode

from django.utils.dateparse import parse_datetime

from integrations.connectors import register
from integrations.connectors.base import (
    Connector,
    DailyQuota,
    DestinationField,
    DestinationObject,
    Outcome,
    OutRecord,
    RateSpec,
    RecordResult,
)
from integrations.connectors.feedback import FeedbackEvent, FeedbackKind, occurred
from integrations.connectors.salesforce.connector import SalesforceConfig
from integrations.connectors.salesforce.fields import json_value
from integrations.connectors.salesforce.oauth import salesforce_flow
from integrations.connectors.values import ValueKind
from mktintegration.errors import ConnectorError, ErrorKind
from mktintegration.http import Response, retry_after_seconds

PRODUCTION = "https://pi.pardot.com"
API = "/api/v5/objects"
OPTED_OUT_POLL = "opted-out"
POLL_PAGE = 200
POLL_OVERLAP_SECONDS = 60  # reads are served from a cache up to 60 s behind [A3]
PROSPECTS = "prospects"
OPT_OUT = "optedOut"
BUSINESS_UNIT_HEADER = "Pardot-Business-Unit-Id"
# A missing or foreign business unit id (unconfirmed: VENDORS.md §6 says only "a 400" [A2]).
BUSINESS_UNIT_CODE = 181
_BUSINESS_UNIT = re.compile(r"^0Uv[A-Za-z0-9]{15}$")
CONCURRENCY_CODE = 66
DAILY_LIMIT_CODE = 122
INVALID_TOKEN_CODE = 184
VALIDATION_CODES = frozenset(range(150, 155))
CONCURRENCY_WAIT = 1.0  # seconds: Pardot sends no Retry-After [A3][A9]
ANSWER_FIELDS = ["id", "email", "createdAt", "updatedAt"]

# The standard prospect fields a sync may write (Pardot's prospect v5 reference [A1]): name,
# type, value kind. Custom fields come from the custom-fields endpoint.
STANDARD_FIELDS = (
    ("email", "Email", "email", ValueKind.EMAIL),
    ("firstName", "First name", "string", ValueKind.TEXT),
    ("lastName", "Last name", "string", ValueKind.TEXT),
    ("salutation", "Salutation", "string", ValueKind.TEXT),
    ("company", "Company", "string", ValueKind.TEXT),
    ("jobTitle", "Job title", "string", ValueKind.TEXT),
    ("department", "Department", "string", ValueKind.TEXT),
    ("phone", "Phone", "string", ValueKind.TEXT),
    ("website", "Website", "string", ValueKind.TEXT),
    ("industry", "Industry", "string", ValueKind.TEXT),
    ("annualRevenue", "Annual revenue", "string", ValueKind.TEXT),
    ("employees", "Employees", "string", ValueKind.TEXT),
    ("address1", "Address 1", "string", ValueKind.TEXT),
    ("city", "City", "string", ValueKind.TEXT),
    ("state", "State", "string", ValueKind.TEXT),
    ("zip", "Zip", "string", ValueKind.TEXT),
    ("country", "Country", "string", ValueKind.TEXT),
    ("source", "Source", "string", ValueKind.TEXT),
    ("comments", "Comments", "string", ValueKind.TEXT),
    (OPT_OUT, "Opted out", "boolean", ValueKind.BOOL),
    ("isDoNotEmail", "Do not e-mail", "boolean", ValueKind.BOOL),
    ("isDoNotCall", "Do not call", "boolean", ValueKind.BOOL),
)
READ_ONLY_FIELDS = (("id", "Id", "integer"), ("createdAt", "Created", "datetime"))
# Custom field types [A5] (emulator and docs: unconfirmed beyond the names): value kinds.
_CUSTOM_KINDS = {
    "Number": ValueKind.NUMBER,
    "Date": ValueKind.DATE,
    "Dropdown": ValueKind.CHOICE,
    "Radio Button": ValueKind.CHOICE,
    "Checkbox": ValueKind.CHOICES,
    "Multi-Select": ValueKind.CHOICES,
}


def business_unit_problem(value: str) -> str | None:
    """Why ``value`` cannot be a business unit id, or None (the one rule of it)."""
    if _BUSINESS_UNIT.match(value or ""):
        return None
    shown = f"{value!r} is" if value else "it is missing: it is"
    return (
        f"business_unit_id: {shown} not a Business Unit Id (18 letters and digits starting "
        "0Uv, from Salesforce Setup > Account Engagement > Business Unit Setup)"
    )


@dataclass(frozen=True)
class PardotConfig(SalesforceConfig):
    """Salesforce's login host (Connect) and the business unit every request names."""

    business_unit_id: str = ""
    required: ClassVar[tuple[str, ...]] = ("business_unit_id",)

    def __post_init__(self):
        super().__post_init__()
        problem = business_unit_problem(self.business_unit_id)
        if problem:
            raise ValueError(problem)


def error_code(response: Response) -> int | None:
    try:
        body = response.json()
    except ValueError:
        return None
    code = body.get("code") if isinstance(body, dict) else None
    return code if isinstance(code, int) else None


def seconds_to_next_day(now: datetime | None = None) -> float:
    """Until the next UTC midnight (and a minute), when the daily limit starts again."""
    now = now or datetime.fromtimestamp(time.time(), UTC)  # the clock the quota counts by
    tomorrow = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return (tomorrow - now).total_seconds() + 60


@register
class Pardot(Connector):
    slug = "pardot"
    label = "Account Engagement"
    auth_kinds = ("oauth2",)
    secret_fields = {"oauth2": ()}
    # The same External Client App as Salesforce (MKT_SALESFORCE_CLIENT_ID), with pardot_api.
    token_flows = {"oauth2": salesforce_flow(("pardot_api", "refresh_token"))}
    config_class = PardotConfig
    config: PardotConfig
    objects = {
        PROSPECTS: DestinationObject(
            PROSPECTS,
            "Prospects (by e-mail address)",
            1,  # upsertLatestByEmail takes one prospect [A1]
            match_fields=("email",),
            personal_data=True,
            opt_out_field=OPT_OUT,
            suppressible=True,
        ),
    }
    default_rate = RateSpec(requests=5, per_seconds=1)  # 5 concurrent requests [A9]
    # Per business unit, by edition: Growth 25,000, Plus 50,000, Advanced and Premium
    # 100,000 [A9]; a connection on a larger edition sets its own (Daily quota requests). The
    # day is UTC's, as the code 122 hold below assumes (Pardot's reset time is unconfirmed).
    daily_quota = DailyQuota(requests=25_000, timezone="UTC")
    # No webhooks [A3]: opted-out prospects are read by a standing poll (docs/webhooks.md#polls).
    standing_polls = (OPTED_OUT_POLL,)
    allowed_hosts = ("pi.pardot.com", "pi.demo.pardot.com")

    def base_url(self) -> str:
        return PRODUCTION

    def authenticate(self, token: str | None, headers: dict | None) -> dict[str, Any]:
        auth = super().authenticate(token, headers)
        auth["headers"][BUSINESS_UNIT_HEADER] = self.config.business_unit_id
        return auth

    def token_rejected(self, response: Response) -> bool:
        return response.status_code == 401 or error_code(response) == INVALID_TOKEN_CODE

    def quota_account(self) -> str:
        """The business unit: Pardot counts the day's requests per business unit [A9], so
        every connection to it shares the allowance."""
        unit = self.config.business_unit_id
        return f"pardot-{unit}" if unit else super().quota_account()

    # --- requests and errors ---------------------------------------------------------------
    def call(self, method: str, path: str, *, what: str, **kwargs: Any) -> Response:
        response = self.send(method, self.url(f"{API}/{path}"), **kwargs)
        self._raise(response, what)
        return response

    def _hold(self, seconds: float) -> None:
        if self.http.throttle is not None:
            self.http.throttle.block(seconds)

    def _count_limited(self, response: Response) -> None:
        """A limit told in the body counts as the client counts a 429 (the run's figure)."""
        if response.status_code != 429:
            self.http.rate_limited += 1

    def _raise(self, response: Response, what: str) -> None:
        if response.status_code < 400:
            return
        code, status = error_code(response), response.status_code
        message = f"{self.label} {what}: HTTP {status}, code {code}: {self.error_text(response)}"
        if code == CONCURRENCY_CODE:
            wait = retry_after_seconds(response) or CONCURRENCY_WAIT
            self._count_limited(response)
            self._hold(wait)
            raise ConnectorError(message, kind=ErrorKind.RATE_LIMITED, retry_after=wait)
        if code == DAILY_LIMIT_CODE:
            wait = seconds_to_next_day()
            self._count_limited(response)
            self._hold(wait)
            # Deferred, not failed: the records go with the run that starts tomorrow.
            raise self.quota_spent(
                f"{message}. The records wait until the daily limit starts again "
                f"(in {wait / 3600:.1f} h)",
                resets_at=time.time() + wait,
            )
        if code == BUSINESS_UNIT_CODE:
            raise ConnectorError(
                f"{message} (check the connection's business_unit_id: "
                f"{self.config.business_unit_id})",
                kind=ErrorKind.CONFIG,
                status=status,
            )
        if code == INVALID_TOKEN_CODE and status != 401:
            raise ConnectorError(message, kind=ErrorKind.AUTH, status=status)
        self.raise_for_status(response, what)

    # --- fields --------------------------------------------------------------------------
    def test_connection(self) -> str:
        self.call("GET", f"{PROSPECTS}?{urlencode({'fields': 'id', 'limit': 1})}", what="test")
        return f"Connected to business unit {self.config.business_unit_id}"

    def list_fields(self, object_name: str, destination_config: dict) -> list[DestinationField]:
        fields = [
            DestinationField(
                name, label, kind=kind, type=vendor_type, unique=name == "email", required=False
            )
            for name, label, vendor_type, kind in STANDARD_FIELDS
        ]
        fields += [
            DestinationField(name, label, type=vendor_type, read_only=True)
            for name, label, vendor_type in READ_ONLY_FIELDS
        ]
        query = urlencode({"fields": "id,name,fieldId,type,isRequired,values", "limit": 1000})
        for spec in self.call("GET", f"custom-fields?{query}", what="fields").json()["values"]:
            kind = _CUSTOM_KINDS.get(spec.get("type", ""), ValueKind.TEXT)
            fields.append(
                DestinationField(
                    name=f"{spec['fieldId']}__c",
                    label=spec.get("name") or spec["fieldId"],
                    type=spec.get("type", "Text"),
                    required=bool(spec.get("isRequired")),
                    kind=kind,
                    options=tuple(str(v["value"]) for v in spec.get("values") or ()),
                )
            )
        return fields

    def _fields(self, object_name: str) -> dict[str, DestinationField]:
        from integrations.selectors import destination_fields  # cached per connection

        return {
            f.name: f
            for f in destination_fields(
                connection=self.connection, object_name=object_name, destination_config={}
            )
        }

    def match_key(self, object_name: str, match_field: str, value: str) -> str:
        return value.lower()  # one prospect per address, whatever its case [A1]

    def match_key_sql(self, object_name: str, match_field: str, match_sql: str) -> str | None:
        return f"LOWER({match_sql})"

    # --- writes --------------------------------------------------------------------------
    def prospect_body(self, payload: dict[str, Any], fields: dict) -> dict[str, Any]:
        """The prospect's fields as Pardot takes them; ``optedOut`` only ever ``true``."""
        body: dict[str, Any] = {}
        for name, value in payload.items():
            field = fields.get(name)
            converted = json_value(field, value)
            flag = field is not None and field.kind == ValueKind.BOOL
            if flag and (converted is None or (name == OPT_OUT and not converted)):
                continue  # never opted back in; an empty flag is left as it is
            if field is not None and field.kind == ValueKind.CHOICES and converted:
                converted = [v for v in str(converted).split(field.separator) if v]
            body[name] = converted
        return body

    def lookup(
        self,
        object_name: str,
        match_values: list[str],
        *,
        match_field: str,
        destination_config: dict,
    ) -> dict[str, str]:
        found = {}
        for value in dict.fromkeys(match_values):
            query = urlencode({"fields": "id,email", "email": value})
            prospects = self.call("GET", f"{PROSPECTS}?{query}", what="look-up").json()
            if prospects.get("values"):
                found[value] = str(prospects["values"][0]["id"])
        return found

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
        fields = self._fields(object_name)
        results = []
        for record in records:
            if mode in ("create_only", "update_only"):
                found = self.lookup(
                    object_name, [record.match_value], match_field=match_field,
                    destination_config=destination_config,
                ).get(record.match_value)  # fmt: skip
                if mode == "create_only" and found:
                    results.append(
                        RecordResult(record.key, Outcome.UNCHANGED, found, "exists; create-only")
                    )
                    continue
                if mode == "update_only" and not found:
                    results.append(
                        RecordResult(record.key, Outcome.UNCHANGED, "", "not there; update-only")
                    )
                    continue
            results.append(self._upsert_one(record, fields, idempotency_key))
        return results

    def _upsert_one(self, record: OutRecord, fields: dict, idempotency_key: str) -> RecordResult:
        prospect = self.prospect_body(record.payload, fields)
        prospect["email"] = record.match_value
        body = {
            "matchEmail": record.match_value,
            "prospect": prospect,
            "fields": ANSWER_FIELDS,
            # A prospect in the recycle bin is restored (with its history and opt-out), not
            # created a second time [A4].
            "secondaryDeletedSearch": True,
        }
        response = self.send(
            "POST",
            self.url(f"{API}/{PROSPECTS}/do/upsertLatestByEmail"),
            json=body,
            records=1,
            idempotency_key=idempotency_key,
        )
        code = error_code(response)
        if response.status_code >= 400 and code in VALIDATION_CODES:
            return RecordResult(
                record.key,
                Outcome.REJECTED,
                record.destination_id,
                f"code {code}: {self.error_text(response)}"[:500],
                str(code),
            )
        self._raise(response, "upsert")
        answer = response.json()
        created_at = _moment(answer.get("createdAt"))
        created = created_at is not None and created_at == _moment(answer.get("updatedAt"))
        return RecordResult(
            record.key,
            Outcome.CREATED if created and not record.known_at_destination else Outcome.UPDATED,
            str(answer.get("id") or ""),
            created_at=created_at,
        )

    def poll_feedback(self, key: str, cursor: dict) -> tuple[list[FeedbackEvent], dict, bool]:
        """``opted-out``: prospects changed since the cursor, oldest first, 200 a page; each one
        opted out is an unsubscribe from all e-mail. Reads may be up to 60 s behind the writes
        [A3], so each pass starts a minute before the latest change the last one saw (events
        are told apart by prospect and change time: read twice, stored once). The filter's name
        (``updatedAtAfter``) is unconfirmed in VENDORS.md."""
        if key != OPTED_OUT_POLL:
            raise ConnectorError(f"{self.label} cannot poll {key!r}", kind=ErrorKind.CONFIG)
        since = str(cursor.get("since") or datetime.now(UTC).isoformat())
        params = {
            "fields": "id,email,optedOut,updatedAt",
            "updatedAtAfter": since,
            "orderBy": "updatedAt",
            "limit": POLL_PAGE,
        }
        if cursor.get("page"):
            params["nextPageToken"] = str(cursor["page"])
        answer = self.call("GET", f"{PROSPECTS}?{urlencode(params)}", what="opted-out poll").json()
        values = [v for v in answer.get("values") or () if isinstance(v, dict)]
        events = [
            FeedbackEvent(
                kind=FeedbackKind.UNSUBSCRIBE,
                occurred_at=occurred(str(v.get("updatedAt") or "")),
                vendor_event="prospect optedOut",
                raw=v,
                event_id=f"{v.get('id')}:{v.get('updatedAt')}",
                email=str(v.get("email") or ""),
                all_email=True,
                detail="opted out at Account Engagement",
            )
            for v in values
            if v.get(OPT_OUT) is True
        ]
        latest = max(
            [str(cursor.get("latest") or since)] + [str(v.get("updatedAt") or "") for v in values]
        )
        token = answer.get("nextPageToken")
        if token:
            return events, {"since": since, "page": token, "latest": latest}, True
        start = occurred(latest) - timedelta(seconds=POLL_OVERLAP_SECONDS)
        return events, {"since": start.isoformat()}, False

    def suppress(
        self, object_name: str, records: list[OutRecord], *, destination_config: dict
    ) -> list[RecordResult]:
        """Consent withdrawn elsewhere: ``optedOut: true`` by upsertLatestByEmail (the one
        retry-safe write; a prospect in the recycle bin comes back opted out). Nothing we send
        later opts them back in: ``optedOut`` only ever goes as true."""
        fields = self._fields(object_name)
        return [
            self._upsert_one(
                OutRecord(r.key, r.match_value, {OPT_OUT: True}, r.destination_id, True),
                fields,
                f"suppress-{r.key}",
            )
            for r in records
        ]

    def delete(
        self, object_name: str, records: list[OutRecord], *, destination_config: dict
    ) -> list[RecordResult]:
        results = []
        for record in records:
            if not record.destination_id:
                results.append(
                    RecordResult(record.key, Outcome.REJECTED, "", "no prospect id known")
                )
                continue
            response = self.send(
                "DELETE",
                self.url(f"{API}/{PROSPECTS}/{quote(record.destination_id)}"),
                records=1,
            )
            if response.status_code != 404:  # already in the recycle bin: done
                self._raise(response, "delete")
            results.append(RecordResult(record.key, Outcome.DELETED, record.destination_id))
        return results


def _moment(value: Any) -> datetime | None:
    return parse_datetime(str(value)) if value else None
