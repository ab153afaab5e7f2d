"""HubSpot CRM v3: companies and contacts by batch upsert on a unique property.

Facts from ../shared/VENDORS.md §3: private-app token as ``Bearer`` [H5]; batch upsert
``POST /crm/v3/objects/{type}/batch/upsert`` of at most 100 inputs keyed by ``idProperty``, which
must be a unique-value property (or ``email`` for contacts) [H13]; 200, or 207 with per-input
``errors[].context.ids`` [H11]; property values are strings, "" clears [H2]; batch read by
``idProperty`` and batch archive (soft delete) [H11]; 429 with ``policyName`` and the
``X-HubSpot-RateLimit-*`` headers [H18]; properties API for the field list [H25].

Feedback: webhooks are a JSON array of events signed with ``X-HubSpot-Signature-v3`` (HMAC-SHA256
of method + URI + body + timestamp with the app's client secret, base64; older than 5 minutes
refused) [H21][H22][H23]; an opt-out is a ``contact.propertyChange`` of the opt-out or bounce
property the connection names [H12]. A withdrawal elsewhere unsubscribes the contact from all
e-mail with Communication Preferences v4 ``statuses/batch/unsubscribe-all`` [H11].

OAuth (auth kind ``oauth2``): social-core's ``HubSpotOAuth2`` on the v3 endpoints, since v1 is
deprecated on 2027-02-16 [H9]: ``POST /oauth/v3/token`` with every parameter in the form body
(``code_verifier`` too: PKCE), ``/oauth/v3/token/introspect`` for the account (hub id, hub
domain, scopes) and ``/oauth/v3/token/revoke`` for the refresh token [H6][H7]. Access tokens
last 30 minutes [H8] and are refreshed before; a bad refresh token answers 400 with
``status: BAD_REFRESH_TOKEN`` (v1's documented shape [H10]; v3's is unconfirmed).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from typing import cast

from django.conf import settings
from django.utils.dateparse import parse_datetime
from social_core.backends.hubspot import HubSpotOAuth2

from integrations.connectors import register
from integrations.connectors.base import (
    Connector,
    ConnectorConfig,
    DailyQuota,
    DestinationField,
    DestinationObject,
    Outcome,
    OutRecord,
    QuotaUsage,
    RateSpec,
    RecordResult,
)
from integrations.connectors.feedback import (
    FeedbackEvent,
    FeedbackKind,
    InboundWebhook,
    RefusalReason,
    WebhookRefused,
)
from integrations.connectors.values import ValueKind
from integrations.oauth.backends import FORM_HEADERS, ConnectBackend
from integrations.oauth.flows import AuthorizationCode
from mktintegration import bounds
from mktintegration.errors import ConnectorError, ErrorKind

MAX_BATCH = 100
# Read and write companies and contacts [H11]; "oauth" is what every HubSpot app asks [P1].
OAUTH_SCOPES = (
    "oauth",
    "crm.objects.companies.read",
    "crm.objects.companies.write",
    "crm.objects.contacts.read",
    "crm.objects.contacts.write",
)
# HubSpot's names for a code or refresh token it does not accept, and for the app's id [H10].
_GRANT_REFUSED = {"BAD_REFRESH_TOKEN", "BAD_AUTH_CODE"}
_CLIENT_REFUSED = {"BAD_CLIENT_ID", "BAD_CLIENT_SECRET", "BAD_REDIRECT_URI"}
# X-HubSpot-Request-Timestamp older than this is refused [H22].
SIGNATURE_MAX_AGE_SECONDS = 300
UNSUBSCRIBE_ALL = "/communication-preferences/v4/statuses/batch/unsubscribe-all"


@dataclass(frozen=True)
class HubSpotConfig(ConnectorConfig):
    # The contact properties whose change the webhooks report as an opt-out and as a hard
    # bounce (subscribe to contact.propertyChange for them). HubSpot's names for these are
    # not confirmed in VENDORS.md; these are its usual ones. "" turns one off.
    optout_property: str = "hs_email_optout"
    bounce_property: str = "hs_email_hard_bounce_reason_enum"


def hubspot_value(value) -> str:
    """HubSpot takes every property value as a string; "" clears the property."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


class HubSpotConnect(ConnectBackend, HubSpotOAuth2):
    """social-core's HubSpot backend on the v3 endpoints [H6][H7]."""

    name = "connect-hubspot"
    ACCESS_TOKEN_URL = "https://api.hubapi.com/oauth/v3/token"  # noqa: S105 - a URL
    REVOKE_TOKEN_URL = "https://api.hubapi.com/oauth/v3/token/revoke"  # noqa: S105 - a URL
    INTROSPECT_URL = "https://api.hubapi.com/oauth/v3/token/introspect"

    def _client(self) -> dict[str, str]:
        key, secret = self.client_id_and_secret()
        return {"client_id": key, "client_secret": secret}

    def user_data(self, access_token, *args, **kwargs):
        """The account, from the v3 introspection (v1's metadata URL has the token in it)."""
        return self.get_json(
            self.INTROSPECT_URL,
            method="POST",
            headers=FORM_HEADERS,
            data={**self._client(), "token": access_token, "token_type_hint": "access_token"},
        )

    def revoke_token_params(self, token, uid):
        return {**self._client(), "token": token, "token_type_hint": "refresh_token"}

    def get_provider_error(self, data, **kwargs):
        if isinstance(data, dict) and data.get("status") in _GRANT_REFUSED | _CLIENT_REFUSED:
            code = "invalid_grant" if data["status"] in _GRANT_REFUSED else "invalid_client"
            data = {"error": code, "error_description": str(data.get("message") or "")}
        return super().get_provider_error(data, **kwargs)

    def token_answer(self, response):
        return replace(
            super().token_answer(response),
            account_id=str(response.get("hub_id") or ""),
            account_name=str(response.get("hub_domain") or ""),
        )


@register
class HubSpot(Connector):
    slug = "hubspot"
    label = "HubSpot"
    auth_kinds = ("private_app_token", "oauth2")
    secret_fields = {"private_app_token": ("token",), "oauth2": ()}
    token_flows = {
        "oauth2": AuthorizationCode(
            backend=HubSpotConnect, client="hubspot", scopes=OAUTH_SCOPES, pkce=True
        )
    }
    config_class = HubSpotConfig
    objects = {
        "companies": DestinationObject("companies", "Companies", MAX_BATCH),
        "contacts": DestinationObject(
            "contacts", "Contacts", MAX_BATCH, personal_data=True, suppressible=True
        ),
    }
    default_rate = RateSpec(requests=100, per_seconds=10)  # Free/Starter private app [H18]
    # 250,000 a day per account on Free/Starter (more on other plans and with the add-on: set
    # the connection's own), shared by every app on it. HubSpot's day ends at midnight in the
    # account's time zone [H18], which its API does not tell us: UTC here, and HubSpot's own
    # count (the Daily headers of private-app requests) corrects ours.
    daily_quota = DailyQuota(requests=250_000, timezone="UTC")
    allowed_hosts = ("api.hubapi.com",)
    webhook_auth = "signature"

    def base_url(self) -> str:
        return "https://api.hubapi.com"

    def authenticate(self, token, headers):
        """A bearer: the OAuth access token, or the private app token [H5]."""
        token = token or self.secrets.get("token")
        if not token:
            raise ConnectorError("HubSpot: no private app token stored", kind=ErrorKind.AUTH)
        return super().authenticate(token, headers)

    def _get(self, path: str, *, what: str):
        response = self.send("GET", self.url(path))
        self._observe_rate_headers(response)  # reads spend the same window as writes
        self.raise_for_status(response, what)
        return response

    def _post(self, path: str, body: dict, *, what: str, records: int, idempotency_key: str = ""):
        response = self.send(
            "POST",
            self.url(path),
            json=body,
            headers={"Idempotency-Key": idempotency_key} if idempotency_key else None,
            records=records,
            idempotency_key=idempotency_key,
        )
        self._observe_rate_headers(response)
        if response.status_code == 400:
            text = self.error_text(response)
            kind = ErrorKind.CONFIG if "non-unique" in text else ErrorKind.PERMANENT
            raise ConnectorError(f"HubSpot {what}: {text}", kind=kind, status=400)
        self.raise_for_status(response, what)
        return response

    def quota_usage(self, response) -> QuotaUsage | None:
        """``X-HubSpot-RateLimit-Daily`` and ``-Daily-Remaining``: HubSpot's count of the
        account's requests today (private-app requests only: OAuth ones carry none) [H18]."""
        try:
            limit = int(response.headers["X-HubSpot-RateLimit-Daily"])
            remaining = int(response.headers["X-HubSpot-RateLimit-Daily-Remaining"])
        except (KeyError, ValueError):
            return None
        return QuotaUsage(used=max(limit - remaining, 0), limit=limit)

    def raise_for_status(self, response, what: str) -> None:
        """A 429 whose ``policyName`` is ``DAILY`` is the day's allowance spent [H18]: the
        records wait for the next day (deferred), never failed."""
        if response.status_code == 429 and _policy(response) == "DAILY":
            raise self.quota_spent(
                f"HubSpot {what}: the account's daily API limit is reached (policyName DAILY); "
                "requests go again after midnight"
            )
        super().raise_for_status(response, what)

    @staticmethod
    def error_text(response) -> str:
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict) and body.get("message"):
            return error_message(body)[:300]
        return Connector.error_text(response)

    def _observe_rate_headers(self, response) -> None:
        """[H18] X-HubSpot-RateLimit-Remaining 0: the window is spent (perhaps by another app
        on the account); hold this connection's budget for one slot of the window."""
        remaining = response.headers.get("X-HubSpot-RateLimit-Remaining")
        if remaining is None or self.http.throttle is None:
            return
        try:
            spent = int(remaining) <= 0
            window = float(response.headers.get("X-HubSpot-RateLimit-Interval-Milliseconds", 10000))
            limit = max(int(response.headers.get("X-HubSpot-RateLimit-Max", 100)), 1)
        except ValueError:
            return
        if spent:
            self.http.throttle.block(window / 1000 / limit)

    def test_connection(self) -> str:
        response = self._get("/crm/v3/properties/companies", what="test")
        return f"Connected: {len(response.json().get('results', []))} company properties readable"

    def list_fields(self, object_name: str, destination_config: dict) -> list[DestinationField]:
        response = self._get(f"/crm/v3/properties/{object_name}", what="list fields")
        return [
            DestinationField(
                name=item["name"],
                label=item.get("label") or item["name"],
                type=item.get("type", "string"),
                unique=bool(item.get("hasUniqueValue"))
                or (object_name == "contacts" and item["name"] == "email"),
                read_only=bool(item.get("modificationMetadata", {}).get("readOnlyValue")),
                kind=_kind(object_name, item),
                options=tuple(str(o["value"]) for o in item.get("options") or () if "value" in o),
            )
            for item in response.json().get("results", [])
        ]

    def match_key(self, object_name: str, match_field: str, value: str) -> str:
        return _norm(match_field, value)  # HubSpot keeps contact e-mails lower-cased

    def match_key_sql(self, object_name: str, match_field: str, match_sql: str) -> str | None:
        return f"LOWER({match_sql})" if match_field == "email" else match_sql

    def lookup(
        self,
        object_name: str,
        match_values: list[str],
        *,
        match_field: str,
        destination_config: dict,
    ) -> dict[str, str]:
        if not match_values:
            return {}
        response = self._post(
            f"/crm/v3/objects/{object_name}/batch/read",
            {
                "idProperty": match_field,
                "inputs": [{"id": value} for value in match_values],
                "properties": [match_field],
            },
            what="look-up",
            records=len(match_values),
        )
        found = {}
        for item in response.json().get("results", []):
            value = (item.get("properties") or {}).get(match_field)
            if value is not None:
                found[_norm(match_field, value)] = str(item["id"])
        return {
            v: found[_norm(match_field, v)] for v in match_values if _norm(match_field, v) in found
        }

    def lookup_record(
        self,
        object_name: str,
        match_field: str,
        match_value: str,
        destination_config: dict,
        *,
        fields: tuple[str, ...] = (),
    ) -> dict | None:
        """The batch read by ``idProperty`` (a read, never a write) of one record, with the
        properties asked for (HubSpot returns only its defaults otherwise) [H11]."""
        names = list(dict.fromkeys([match_field, *fields]))
        response = self._post(
            f"/crm/v3/objects/{object_name}/batch/read",
            {"idProperty": match_field, "inputs": [{"id": match_value}], "properties": names},
            what="look-up",
            records=1,
        )
        for item in response.json().get("results", []):
            properties = item.get("properties") or {}
            return {"id": str(item["id"]), "fields": {name: properties.get(name) for name in names}}
        return None

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
        results, to_write = self.by_mode(
            object_name,
            records,
            mode=mode,
            match_field=match_field,
            destination_config=destination_config,
        )
        if to_write:
            results.update(self._batch_upsert(object_name, to_write, match_field, idempotency_key))
        return [results[r.key] for r in records]

    def _batch_upsert(self, object_name, records, match_field, idempotency_key):
        body = {
            "inputs": [
                {
                    "idProperty": match_field,
                    "id": record.match_value,
                    "properties": {
                        name: hubspot_value(value)
                        for name, value in record.payload.items()
                        if name != match_field
                    },
                    # Per-input trace ids turn on HubSpot's multi-status answer [H17]: a bad
                    # input is a 207 error of its own instead of failing the whole batch.
                    "objectWriteTraceId": record.key,
                }
                for record in records
            ]
        }
        response = self._post(
            f"/crm/v3/objects/{object_name}/batch/upsert",
            body,
            what="batch upsert",
            records=len(records),
            idempotency_key=idempotency_key,
        )
        data = response.json()
        by_value = {_norm(match_field, r.match_value): r for r in records}
        by_trace = {r.key: r for r in records}
        results: dict[str, RecordResult] = {}
        for item in data.get("results", []):
            value = (item.get("properties") or {}).get(match_field)
            record = by_trace.get(item.get("objectWriteTraceId") or "")
            if record is None and value is not None:
                record = by_value.get(_norm(match_field, value))
            if record is None:
                continue
            outcome = Outcome.CREATED if item.get("new") else Outcome.UPDATED
            results[record.key] = RecordResult(
                record.key, outcome, str(item.get("id", "")), created_at=_moment(item)
            )
        for error in data.get("errors", []):
            message = error_message(error)
            code = error.get("category", "")
            context = error.get("context") or {}
            named = [by_trace.get(t) for t in context.get("objectWriteTraceId") or ()]
            named += [by_value.get(_norm(match_field, v)) for v in context.get("ids") or ()]
            for record in named:
                if record is not None and record.key not in results:
                    outcome = Outcome.RETRY if code in _RETRYABLE else Outcome.REJECTED
                    results[record.key] = RecordResult(record.key, outcome, "", message[:500], code)
        for record in records:
            # A record HubSpot neither confirmed nor rejected is not assumed delivered.
            results.setdefault(
                record.key,
                RecordResult(record.key, Outcome.RETRY, "", "HubSpot did not report this record"),
            )
        return results

    def delete(
        self, object_name: str, records: list[OutRecord], *, destination_config: dict
    ) -> list[RecordResult]:
        with_ids = [r for r in records if r.destination_id]
        if with_ids:
            self._post(
                f"/crm/v3/objects/{object_name}/batch/archive",
                {"inputs": [{"id": r.destination_id} for r in with_ids]},
                what="batch archive",
                records=len(with_ids),
            )
        return [
            RecordResult(r.key, Outcome.DELETED, r.destination_id)
            if r.destination_id
            else RecordResult(r.key, Outcome.REJECTED, "", "no HubSpot id known to archive")
            for r in records
        ]

    # --- feedback ------------------------------------------------------------------------
    @classmethod
    def verify_webhook(cls, request: InboundWebhook, *, connection, now: float) -> None:
        """``X-HubSpot-Signature-v3`` [H22][H23]: base64 HMAC-SHA256, with the app's client
        secret, of method + URI + body + timestamp; a timestamp more than 5 minutes away from
        now is refused (a replayed capture)."""
        secret = settings.MKT_HUBSPOT_WEBHOOK_SECRET
        if not secret:
            raise WebhookRefused(
                RefusalReason.NOT_CONFIGURED,
                "HubSpot webhooks are not configured here (MKT_HUBSPOT_WEBHOOK_SECRET)",
                status=503,
                retry_after=300,
            )
        signature = request.header("X-HubSpot-Signature-v3")
        stamp = request.header("X-HubSpot-Request-Timestamp")
        if not signature or not stamp:
            raise WebhookRefused(
                RefusalReason.BAD_SIGNATURE,
                "X-HubSpot-Signature-v3 and X-HubSpot-Request-Timestamp are required",
            )
        try:
            sent = int(stamp) / 1000
        except ValueError:
            raise WebhookRefused(
                RefusalReason.BAD_SIGNATURE, "X-HubSpot-Request-Timestamp is not a number"
            ) from None
        if abs(now - sent) > SIGNATURE_MAX_AGE_SECONDS:
            raise WebhookRefused(
                RefusalReason.STALE_TIMESTAMP,
                "X-HubSpot-Request-Timestamp is more than 5 minutes from now",
            )
        expected = hubspot_signature(
            secret,
            method=request.method,
            uri=request.url,
            body=request.body,
            timestamp=stamp,
        )
        if not hmac.compare_digest(expected.encode(), signature.strip().encode()):
            raise WebhookRefused(RefusalReason.BAD_SIGNATURE, "the signature does not match")

    @classmethod
    def parse_webhook(cls, request: InboundWebhook, *, connection) -> list[FeedbackEvent]:
        """A JSON array of events [H21]; opt-outs and bounces are property changes of the
        connection's ``optout_property`` / ``bounce_property``; everything else is kept as
        "other"."""
        try:
            events = bounds.json_loads(request.body, field="body", depth=bounds.WEBHOOK_DEPTH)
        except (bounds.BoundError, ValueError) as exc:
            raise WebhookRefused(
                RefusalReason.BAD_BODY, f"not a HubSpot webhook body: {exc}", status=400
            ) from None
        if not isinstance(events, list) or not all(_flat_event(e) for e in events):
            raise WebhookRefused(
                RefusalReason.BAD_BODY,
                "a HubSpot webhook body is an array of flat events [H21]",
                status=400,
            )
        config = cast(HubSpotConfig, HubSpotConfig.from_dict(connection.config or {}))
        return [_feedback(event, config) for event in events]

    def feedback_emails(self, subject_ids: list[str]) -> dict[str, str]:
        """The contacts' ``email``, by batch read on their ids [H11]."""
        found: dict[str, str] = {}
        for start in range(0, len(subject_ids), MAX_BATCH):
            chunk = subject_ids[start : start + MAX_BATCH]
            response = self._post(
                "/crm/v3/objects/contacts/batch/read",
                {"inputs": [{"id": i} for i in chunk], "properties": ["email"]},
                what="contact look-up",
                records=len(chunk),
            )
            for item in response.json().get("results", []):
                email = (item.get("properties") or {}).get("email")
                if email:
                    found[str(item["id"])] = email
        return found

    def suppress(
        self, object_name: str, records: list[OutRecord], *, destination_config: dict
    ) -> list[RecordResult]:
        """Unsubscribe the contacts from all e-mail (Communication Preferences v4, by address,
        ``verbose`` for a result per contact) [H11]: a later upsert leaves that status alone."""
        if object_name != "contacts":
            raise ConnectorError(
                f"HubSpot {object_name} are not people: nothing to unsubscribe",
                kind=ErrorKind.CONFIG,
            )
        by_email = {_norm("email", r.match_value): r for r in records}
        response = self._post(
            f"{UNSUBSCRIBE_ALL}?channel=EMAIL&verbose=true",
            {"inputs": list(by_email)},
            what="unsubscribe from all e-mail",
            records=len(records),
        )
        data = response.json() if response.content else {}
        results: dict[str, RecordResult] = {}
        for item in data.get("results", []):
            record = by_email.get(_norm("email", item.get("subscriberIdString", "")))
            statuses = {s.get("status") for s in item.get("statuses") or []}
            if record is not None and (not statuses or statuses <= {"UNSUBSCRIBED"}):
                results[record.key] = RecordResult(
                    record.key, Outcome.UPDATED, record.destination_id
                )
        for error in data.get("errors", []):
            message = error_message(error)
            for values in (error.get("context") or {}).values():
                for value in values or ():
                    record = by_email.get(_norm("email", value))
                    if record is not None and record.key not in results:
                        results[record.key] = RecordResult(
                            record.key,
                            Outcome.REJECTED,
                            "",
                            message[:500],
                            error.get("category", ""),
                        )
        return [
            results.get(r.key)
            or RecordResult(r.key, Outcome.RETRY, "", "HubSpot did not report this contact")
            for r in records
        ]


def hubspot_signature(secret: str, *, method: str, uri: str, body: bytes, timestamp: str) -> str:
    """``X-HubSpot-Signature-v3`` [H22]: base64(HMAC-SHA256(secret, method + URI + body +
    timestamp)), the string taken as UTF-8."""
    message = method.encode() + uri.encode() + body + timestamp.encode()
    digest = hmac.new(secret.encode(), message, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def _flat_event(event) -> bool:
    """An event of [H21]: an object of plain values."""
    return isinstance(event, dict) and not any(isinstance(v, dict | list) for v in event.values())


def _feedback(event: dict, config: HubSpotConfig) -> FeedbackEvent:
    kind = FeedbackKind.OTHER
    detail = ""
    subscription = str(event.get("subscriptionType") or "")
    name = str(event.get("propertyName") or "")
    value = str(event.get("propertyValue") if event.get("propertyValue") is not None else "")
    if subscription == "contact.propertyChange" and name:
        if name == config.optout_property and value.lower() == "true":
            kind, detail = FeedbackKind.UNSUBSCRIBE, "unsubscribed from all e-mail at HubSpot"
        elif name == config.bounce_property and value:
            kind, detail = FeedbackKind.HARD_BOUNCE, f"hard bounce at HubSpot: {value}"[:300]
    try:
        occurred = datetime.fromtimestamp(int(event.get("occurredAt") or 0) / 1000, tz=UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        occurred = datetime.now(UTC)
    subject = event.get("objectId")
    return FeedbackEvent(
        kind=kind,
        occurred_at=occurred,
        vendor_event=f"{subscription}:{name}" if name else subscription,
        raw=event,
        event_id=str(event.get("eventId") or ""),
        subject_id=str(subject) if subject is not None else "",
        all_email=kind != FeedbackKind.OTHER,  # HubSpot's opt-out is from all e-mail
        detail=detail,
    )


_RETRYABLE = {"RATE_LIMITS", "TIMEOUT", "INTERNAL_ERROR"}


def _policy(response) -> str:
    """The ``policyName`` of a 429 body (``DAILY``, ``TEN_SECONDLY_ROLLING``) [H18]."""
    try:
        body = response.json()
    except ValueError:
        return ""
    return str(body.get("policyName") or "") if isinstance(body, dict) else ""


# A property's type [H25] as the values it takes; enumerations shown as checkboxes take several
# options joined by ";" [H26].
_KINDS = {
    "number": ValueKind.NUMBER,
    "date": ValueKind.DATE,
    "datetime": ValueKind.DATETIME,
    "bool": ValueKind.BOOL,
    "enumeration": ValueKind.CHOICE,
}


def _kind(object_name: str, item: dict) -> str:
    if object_name == "contacts" and item.get("name") == "email":
        return ValueKind.EMAIL
    kind = _KINDS.get(item.get("type", "string"), ValueKind.TEXT)
    if kind == ValueKind.CHOICE and item.get("fieldType") == "checkbox":
        return ValueKind.CHOICES
    return kind


def error_message(error: dict) -> str:
    """One HubSpot error (a response body or an ``errors[]`` entry) as text a person reads.

    A validation message embeds the per-property problems as a JSON list [H11] ("Property
    values were not valid: [{"isValid": false, "message": "M\\u00fcnchen ...", "name":
    "city"}]", non-ASCII escaped): they are given as "city: München ..." instead, joined by
    "; ". Any other message is kept as it is.
    """
    message = str(error.get("message") or error.get("category") or "rejected")
    head, embeds, embedded = message.partition(": [")
    try:
        problems = json.loads("[" + embedded) if embeds else []
    except ValueError:
        return message
    parts = [
        f"{p['name']}: {p['message']}" if p.get("name") else str(p["message"])
        for p in problems
        if isinstance(p, dict) and p.get("message")
    ]
    return f"{head}: {'; '.join(parts)}" if parts else message


def _moment(item: dict) -> datetime | None:
    """The object's ``createdAt`` [H11], when HubSpot gives one."""
    try:
        return parse_datetime(str(item.get("createdAt") or "")) or None
    except ValueError:
        return None


def _norm(match_field: str, value) -> str:
    text = str(value)
    return text.lower() if match_field == "email" else text
