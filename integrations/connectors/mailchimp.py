"""Mailchimp Marketing API v3: audience members by batch subscribe, never re-subscribing.

Facts from ../shared/VENDORS.md §1: base ``https://{dc}.api.mailchimp.com/3.0`` with the dc
after the "-" of the API key [M6][M7]; HTTP Basic with the key as password [M6]; batch
subscribe ``POST /lists/{id}`` of at most 500 members, HTTP 200 even with rejected members,
per-member ``errors[]`` [M8][M9]; members keyed by the MD5 of the lower-cased e-mail [M10];
archive with ``DELETE .../members/{hash}``, never the permanent delete [M7]; merge fields
listed at ``/lists/{id}/merge-fields`` [M20]; 429 and no rate headers [M1][M14].

Feedback: webhooks are form-encoded POSTs (``type``, ``fired_at``, ``data[...]``) with no
signature: a secret in the receiver URL, and a validation GET answered 200 [M16][M17][M18].
``unsubscribe`` is an opt-out from the audience, ``cleaned`` a hard bounce or an abuse report.
A withdrawal elsewhere sets the member ``unsubscribed`` by batch subscribe [M10][M8].

OAuth (auth kind ``oauth2``): social-core's ``MailChimpOAuth2`` [P3]; after the token, its
metadata call (``Authorization: OAuth <token>``) names the account's data centre and
``api_endpoint``, the API's base [M3]; requests then send ``Authorization: Bearer`` [M6].
Tokens never expire, there is no refresh token and no revoke endpoint [M3][M2]: a 401 means
the account's owner removed the app, and the connection must be reconnected.

Opt-outs are honoured by construction: a member this sync has not confirmed before is first
sent with ``update_existing: false`` (so an existing member, maybe unsubscribed, is never
touched by a status), and members that exist are then updated without any ``status``.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl

from django.utils.dateparse import parse_datetime
from social_core.backends.mailchimp import MailChimpOAuth2

from integrations.connectors import register
from integrations.connectors.base import (
    ConfigField,
    Connector,
    ConnectorConfig,
    DestinationField,
    DestinationObject,
    Outcome,
    OutRecord,
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
from integrations.connectors.values import ValueKind, email_sql, is_email
from integrations.oauth.backends import ConnectBackend
from integrations.oauth.flows import AuthorizationCode
from mktintegration import bounds
from mktintegration.errors import ConnectorError, ErrorKind

MAX_MEMBERS = 500
AUDIENCES_PAGE = 1000  # GET /lists takes count up to 1000
MAX_AUDIENCES = 5000  # audiences offered in the sync editor (accounts have a handful)
_EXISTS_CODES = {"ERROR_CONTACT_EXISTS"}


@dataclass(frozen=True)
class MailchimpConfig(ConnectorConfig):
    double_opt_in: bool = False  # new members start "pending" and get a confirmation e-mail


def subscriber_hash(email: str) -> str:
    return hashlib.md5(email.lower().encode(), usedforsecurity=False).hexdigest()


class MailchimpConnect(ConnectBackend, MailChimpOAuth2):
    """social-core's Mailchimp backend [P3]; the account from its metadata call [M3]."""

    name = "connect-mailchimp"

    def token_answer(self, response):
        return replace(
            super().token_answer(response),
            account_id=str(response.get("user_id") or ""),
            account_name=str(response.get("accountname") or ""),
            region=str(response.get("dc") or ""),
            api_endpoint=str(response.get("api_endpoint") or ""),
        )


@register
class Mailchimp(Connector):
    slug = "mailchimp"
    label = "Mailchimp"
    auth_kinds = ("api_key", "oauth2")
    secret_fields = {"api_key": ("api_key",), "oauth2": ()}
    token_flows = {
        "oauth2": AuthorizationCode(
            backend=MailchimpConnect,
            client="mailchimp",
            refreshes=False,
            seed_secrets=("access_token",),
        )
    }
    config_class = MailchimpConfig
    config: MailchimpConfig
    objects = {
        "members": DestinationObject(
            "members",
            "Audience members",
            MAX_MEMBERS,
            match_fields=("email_address",),
            requires=("list_id",),
            personal_data=True,
            suppressible=True,
        ),
    }
    default_rate = RateSpec(requests=10, per_seconds=1)  # 10 concurrent connections [M1]
    allowed_hosts = ("*.api.mailchimp.com",)
    webhook_auth = "url_secret"  # no signature or HMAC [M16][M19]
    webhook_validation_get = True

    def _key(self) -> str:
        key = self.secrets.get("api_key", "")
        if not key:
            raise ConnectorError("Mailchimp: no API key stored", kind=ErrorKind.AUTH)
        return key

    def base_url(self) -> str:
        if self.tokens is not None:
            endpoint = self.tokens.grant().api_endpoint
            if not endpoint:
                raise ConnectorError(
                    self.tokens.with_link(
                        "Mailchimp: the account's API address is learnt at Connect (or give "
                        "base_url its data centre, https://usNN.api.mailchimp.com).",
                        verb="Connect",
                    ),
                    kind=ErrorKind.CONFIG,
                )
            return f"{endpoint.rstrip('/')}/3.0"
        key = self._key()
        _, _, dc = key.rpartition("-")
        if not dc or not re.fullmatch(r"[a-z]+[0-9]+", dc):
            raise ConnectorError(
                "Mailchimp: the API key should end with its data centre, e.g. '-us14'",
                kind=ErrorKind.CONFIG,
            )
        return f"https://{dc}.api.mailchimp.com/3.0"

    def url(self, path: str) -> str:
        """A base URL override may name the host alone: the API lives under /3.0 [M1]."""
        base = (self.connection.base_url or self.base_url()).rstrip("/")
        if not base.endswith("/3.0"):
            base += "/3.0"
        return f"{base}{path}"

    def authenticate(self, token, headers):
        """OAuth: a bearer [M6]; an API key: HTTP Basic with the key as password [M6]."""
        if token is not None:
            return super().authenticate(token, headers)
        return {"headers": headers, "auth": ("mktintegration", self._key())}

    def _call(self, method: str, path: str, *, what: str, records: int = 0, **kwargs):
        response = self.send(method, self.url(path), records=records, **kwargs)
        if response.status_code == 403 and not response.content:
            # "429 or 403 with no JSON body" at high volume is throttling [M1][M4].
            raise ConnectorError(
                f"Mailchimp {what}: throttled (403, no body)",
                kind=ErrorKind.RATE_LIMITED,
                status=403,
            )
        self.raise_for_status(response, what)
        return response

    def test_connection(self) -> str:
        response = self._call("GET", "/ping", what="test")
        return f"Connected: {response.json().get('health_status', 'ok')}"

    @classmethod
    def config_fields(cls, object_name: str) -> list[ConfigField]:
        return [
            ConfigField(
                "list_id",
                "Audience",
                "The Mailchimp audience (list) the members are written to.",
                required=True,
                choices=lambda connector: connector.audiences(),
            )
        ]

    def audiences(self) -> dict[str, str]:
        """The account's audiences: id -> name (``GET /lists``, paged) [M7]."""
        found: dict[str, str] = {}
        offset = 0
        while offset < MAX_AUDIENCES:
            data = self._call(
                "GET",
                "/lists",
                what="list audiences",
                params={"count": AUDIENCES_PAGE, "offset": offset},
            ).json()
            items = [i for i in data.get("lists") or () if isinstance(i, dict) and i.get("id")]
            found.update({str(i["id"]): str(i.get("name") or i["id"]) for i in items})
            offset += AUDIENCES_PAGE
            if len(items) < AUDIENCES_PAGE or offset >= int(data.get("total_items") or 0):
                break
        return found

    def list_fields(self, object_name: str, destination_config: dict) -> list[DestinationField]:
        list_id = _list_id(destination_config)
        fields = [
            DestinationField(
                "email_address",
                "E-mail address",
                "email",
                unique=True,
                required=True,
                kind=ValueKind.EMAIL,
            )
        ]
        offset = 0
        while True:
            response = self._call(
                "GET",
                f"/lists/{list_id}/merge-fields",
                what="list merge fields",
                params={"count": 100, "offset": offset},
            )
            data = response.json()
            items = data.get("merge_fields", [])
            fields += [
                DestinationField(
                    item["tag"],
                    item.get("name") or item["tag"],
                    item.get("type", "text"),
                    required=bool(item.get("required")),
                    kind=_KINDS.get(item.get("type", "text"), ValueKind.TEXT),
                    options=tuple(str(c) for c in (item.get("options") or {}).get("choices") or ()),
                )
                for item in items
            ]
            offset += len(items)
            if not items or offset >= data.get("total_items", 0):
                return fields

    def validate_record(self, object_name: str, record: OutRecord) -> str | None:
        if not is_email(record.match_value or ""):
            return f"{record.match_value!r} is not an e-mail address"
        return None

    def match_key(self, object_name: str, match_field: str, value: str) -> str:
        return value.lower()  # a member is the MD5 of the lower-cased address [M10]

    def match_key_sql(self, object_name: str, match_field: str, match_sql: str) -> str | None:
        return f"LOWER({match_sql})"

    def validate_record_sql(
        self, object_name: str, match_sql: str, *, fields: tuple[str, ...], pg: bool
    ) -> str | None:
        return email_sql(match_sql, pg=pg)

    def lookup(
        self,
        object_name: str,
        match_values: list[str],
        *,
        match_field: str,
        destination_config: dict,
    ) -> dict[str, str]:
        list_id = _list_id(destination_config)
        found = {}
        for email in match_values:
            response = self.send(
                "GET", self.url(f"/lists/{list_id}/members/{subscriber_hash(email)}")
            )
            if response.status_code == 404:
                continue
            self.raise_for_status(response, "look-up")
            if response.json().get("status") != "archived":
                found[email] = subscriber_hash(email)
        return found

    def lookup_record(
        self,
        object_name: str,
        match_field: str,
        match_value: str,
        destination_config: dict,
        *,
        fields: tuple[str, ...] = (),
    ) -> dict | None:
        """The member by its subscriber hash (a GET) [M10]: address, status (an archived
        member too) and merge fields (those in ``fields``, else all)."""
        list_id = _list_id(destination_config)
        member_id = subscriber_hash(match_value)
        response = self.send("GET", self.url(f"/lists/{list_id}/members/{member_id}"))
        if response.status_code == 404:
            return None
        self.raise_for_status(response, "look-up")
        member = response.json()
        merge_fields = member.get("merge_fields") or {}
        shown = {
            "email_address": member.get("email_address"),
            "status": member.get("status"),
            **{k: v for k, v in merge_fields.items() if not fields or k in fields},
        }
        return {"id": str(member.get("id") or member_id), "fields": shown}

    def _member(self, record: OutRecord, status: str | None) -> dict:
        merge_fields = {k: _text(v) for k, v in record.payload.items() if k != "email_address"}
        member = {"email_address": record.match_value, "merge_fields": merge_fields}
        if status:
            member["status"] = status
        return member

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
        list_id = _list_id(destination_config)
        results: dict[str, RecordResult] = {}
        new_status = "pending" if self.config.double_opt_in else "subscribed"
        unknown = [r for r in records if not r.known_at_destination]
        known = [r for r in records if r.known_at_destination]
        if mode == "update_only":
            existing = self.lookup(
                object_name,
                [r.match_value for r in unknown],
                match_field=match_field,
                destination_config=destination_config,
            )
            for record in unknown:
                if record.match_value in existing:
                    known.append(record)
                else:
                    results[record.key] = RecordResult(
                        record.key,
                        Outcome.UNCHANGED,
                        "",
                        "not in the audience; update-only adds no one",
                    )
            unknown = []
        if unknown:
            # New to us: add with a status, never touching an existing member's status.
            first = self._batch(
                list_id,
                [self._member(r, new_status) for r in unknown],
                update_existing=False,
                idempotency_key=idempotency_key,
            )
            for record, outcome, message, code, _ in _outcomes(unknown, first):
                if code in _EXISTS_CODES or "already a list member" in message:
                    if mode == "create_only":
                        results[record.key] = RecordResult(
                            record.key,
                            Outcome.UNCHANGED,
                            subscriber_hash(record.match_value),
                            "already in the audience; create-only leaves it alone",
                        )
                    else:
                        known.append(record)
                else:
                    results[record.key] = RecordResult(
                        record.key, outcome, subscriber_hash(record.match_value), message, code
                    )
        if known and mode != "create_only":
            # Members that exist: merge fields only, no status (opt-outs stay opted out).
            second = self._batch(
                list_id,
                [self._member(r, None) for r in known],
                update_existing=True,
                idempotency_key=idempotency_key,
            )
            for record, outcome, message, code, opted_in in _outcomes(known, second):
                results[record.key] = RecordResult(
                    record.key,
                    outcome,
                    subscriber_hash(record.match_value),
                    message,
                    code,
                    created_at=opted_in,
                )
        elif known:
            for record in known:
                results.setdefault(
                    record.key,
                    RecordResult(
                        record.key,
                        Outcome.UNCHANGED,
                        subscriber_hash(record.match_value),
                        "create-only: already sent before",
                    ),
                )
        return [results[r.key] for r in records]

    def _batch(
        self, list_id: str, members: list[dict], *, update_existing: bool, idempotency_key: str
    ) -> dict:
        response = self._call(
            "POST",
            f"/lists/{list_id}",
            what="batch subscribe",
            records=len(members),
            json={"members": members, "update_existing": update_existing},
            headers={"Idempotency-Key": idempotency_key} if idempotency_key else None,
            idempotency_key=idempotency_key,
        )
        return response.json()

    def delete(
        self, object_name: str, records: list[OutRecord], *, destination_config: dict
    ) -> list[RecordResult]:
        list_id = _list_id(destination_config)
        results = []
        for record in records:
            response = self.send(
                "DELETE",
                self.url(f"/lists/{list_id}/members/{subscriber_hash(record.match_value)}"),
                records=1,
            )
            if response.status_code == 404:
                results.append(RecordResult(record.key, Outcome.DELETED, "", "already gone"))
                continue
            self.raise_for_status(response, "archive")
            results.append(
                RecordResult(record.key, Outcome.DELETED, subscriber_hash(record.match_value))
            )
        return results

    # --- feedback ------------------------------------------------------------------------
    @classmethod
    def parse_webhook(cls, request: InboundWebhook, *, connection) -> list[FeedbackEvent]:
        """One form-encoded event [M17][M18]; an empty POST is the validation ping [M18]."""
        if not request.body.strip():
            return []
        try:
            fields = dict(
                parse_qsl(
                    request.body.decode("utf-8"),
                    keep_blank_values=True,
                    strict_parsing=True,
                    max_num_fields=bounds.WEBHOOK_FORM_FIELDS,
                )
            )
        except (UnicodeDecodeError, ValueError) as exc:
            raise WebhookRefused(
                RefusalReason.BAD_BODY, f"not a Mailchimp webhook body: {exc}", status=400
            ) from None
        if not fields.get("type"):
            raise WebhookRefused(
                RefusalReason.BAD_BODY, "a Mailchimp webhook names its type", status=400
            )
        return [_feedback(fields)]

    def suppress(
        self, object_name: str, records: list[OutRecord], *, destination_config: dict
    ) -> list[RecordResult]:
        """Set the members ``unsubscribed`` (batch subscribe, ``update_existing``) [M10][M8]:
        that status is kept by every later write of ours, which never sends one for members
        that exist."""
        list_id = _list_id(destination_config)
        data = self._batch(
            list_id,
            [{"email_address": r.match_value, "status": "unsubscribed"} for r in records],
            update_existing=True,
            idempotency_key="",
        )
        results = []
        for record, outcome, message, code, _ in _outcomes(records, data):
            if outcome == Outcome.CREATED:  # an archived member comes back, unsubscribed
                outcome = Outcome.UPDATED
            results.append(
                RecordResult(
                    record.key, outcome, subscriber_hash(record.match_value), message, code
                )
            )
        return results

    def poll_feedback(self, key: str, cursor: dict) -> tuple[list[FeedbackEvent], dict, bool]:
        """``campaign:<id>``: the campaign's email activity (``GET /reports/{id}/email-activity``,
        ``since`` the last activity read, 1,000 members a page): each member listed the first
        time is a send, each ``open``/``click`` an activity, a ``hard`` bounce a bounce."""
        kind, _, campaign_id = key.partition(":")
        if kind != "campaign" or not campaign_id:
            raise ConnectorError(f"Mailchimp cannot poll {key!r}", kind=ErrorKind.CONFIG)
        params: dict[str, str | int] = {"count": REPORT_PAGE, "offset": cursor.get("offset", 0)}
        if cursor.get("since"):
            params["since"] = cursor["since"]
        data = self._call(
            "GET", f"/reports/{campaign_id}/email-activity", what="email activity", params=params
        ).json()
        members = data.get("emails") or []
        sent_at = _moment(cursor.get("sent_at")) or datetime.now(UTC)
        events: list[FeedbackEvent] = []
        latest = cursor.get("since", "")
        for member in members:
            email = str(member.get("email_address") or "")
            scope = {"list_id": str(member["list_id"])} if member.get("list_id") else {}
            base = {"campaign_id": campaign_id, "email_id": member.get("email_id", "")}
            if not cursor.get("since"):
                events.append(
                    FeedbackEvent(
                        kind=FeedbackKind.SEND,
                        occurred_at=sent_at,
                        vendor_event="report:sent",
                        raw=base,
                        email=email,
                        scope=scope,
                        campaign_id=campaign_id,
                    )
                )
            for activity in member.get("activity") or []:
                action = str(activity.get("action") or "")
                stamp = str(activity.get("timestamp") or "")
                latest = max(latest, stamp)
                kind_of = _REPORT_KINDS.get(action)
                if action == "bounce":
                    kind_of = FeedbackKind.HARD_BOUNCE if activity.get("type") == "hard" else None
                if kind_of is None:
                    continue
                events.append(
                    FeedbackEvent(
                        kind=kind_of,
                        occurred_at=_moment(stamp) or sent_at,
                        vendor_event=f"report:{action}",
                        raw={**base, **activity},
                        email=email,
                        scope=scope,
                        all_email=kind_of == FeedbackKind.HARD_BOUNCE,
                        campaign_id=campaign_id,
                        detail=str(activity.get("url") or "")[:300],
                    )
                )
        offset = int(cursor.get("offset", 0)) + len(members)
        more = bool(members) and offset < int(data.get("total_items") or 0)
        new_cursor = {"sent_at": cursor.get("sent_at", "")}
        if more:  # the same window, next page
            new_cursor.update(offset=offset, since=cursor.get("since", ""), latest=latest)
        else:
            # Next time: what happened after the latest activity read, less a minute for
            # activity Mailchimp records late (what is read twice is stored once).
            seen = _moment(max(latest, cursor.get("latest", ""))) or sent_at
            new_cursor["since"] = _iso(seen - timedelta(seconds=REPORT_SLACK_SECONDS))
        return events, new_cursor, more


REPORT_PAGE = 1000  # members per page of a report (Mailchimp's maximum count)
REPORT_SLACK_SECONDS = 60
_REPORT_KINDS = {"open": FeedbackKind.OPEN, "click": FeedbackKind.CLICK}


def _moment(text) -> datetime | None:
    try:
        moment = parse_datetime(str(text or ""))
    except ValueError:
        return None
    if moment is not None and moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds")


def _feedback(fields: dict[str, str]) -> FeedbackEvent:
    """``unsubscribe`` [M17]: an opt-out from this audience (``data[action]`` unsub or delete);
    ``cleaned``: a hard bounce or an abuse report (``data[reason]`` "hard" / "abuse", the
    values unconfirmed) for the address, whatever the purpose; ``campaign``: a campaign's
    sending status (``data[status]``; "sent" unconfirmed)."""
    kind_name = fields["type"]
    reason = fields.get("data[reason]", "")
    scope = {"list_id": fields["data[list_id]"]} if fields.get("data[list_id]") else {}
    kind, all_email, detail = FeedbackKind.OTHER, False, ""
    if kind_name == "unsubscribe":
        kind = FeedbackKind.UNSUBSCRIBE
        detail = f"unsubscribed ({fields.get('data[action]') or 'unsub'}) {reason}".strip()
    elif kind_name == "cleaned":
        abuse = reason.lower() == "abuse"
        kind = FeedbackKind.SPAM_COMPLAINT if abuse else FeedbackKind.HARD_BOUNCE
        all_email, detail = True, f"cleaned: {reason or 'hard bounce'}"
    elif kind_name == "campaign" and fields.get("data[status]", "sent") == "sent":
        kind = FeedbackKind.CAMPAIGN_SENT
        detail = fields.get("data[subject]", "")[:300]
    return FeedbackEvent(
        kind=kind,
        occurred_at=_fired_at(fields.get("fired_at", "")),
        vendor_event=kind_name,
        raw=fields,
        email=fields.get("data[email]", ""),
        scope=scope,
        all_email=all_email,
        campaign_id=fields.get("data[campaign_id]", "")
        or (fields.get("data[id]", "") if kind_name == "campaign" else ""),
        detail=detail[:300],
    )


def _fired_at(text: str) -> datetime:
    """``fired_at`` is ``YYYY-MM-DD HH:MM:SS`` [M17], taken as UTC (its zone is unconfirmed)."""
    try:
        return datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
    except ValueError:
        return datetime.now(UTC)


def _list_id(destination_config: dict) -> str:
    list_id = (destination_config or {}).get("list_id")
    if not list_id:
        raise ConnectorError("Mailchimp: the sync has no audience (list_id)", kind=ErrorKind.CONFIG)
    return str(list_id)


# Merge field types [M20] as the values they take (dropdown and radio: one of the choices;
# dates follow each field's own date_format, so they are left to Mailchimp).
_KINDS = {
    "number": ValueKind.NUMBER,
    "dropdown": ValueKind.CHOICE,
    "radio": ValueKind.CHOICE,
}


def _text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _opted_in(member: dict) -> datetime | None:
    """When the member was subscribed (``timestamp_opt`` [M10]): for a member our sync added as
    subscribed, its creation time; Mailchimp keeps no other creation time."""
    try:
        return parse_datetime(str(member.get("timestamp_opt") or "")) or None
    except ValueError:
        return None


def _outcomes(records: list[OutRecord], data: dict):
    """Pair each record with Mailchimp's answer for its e-mail address:
    (record, outcome, message, code, when it was opted in)."""
    by_email = {r.match_value.lower(): r for r in records}
    seen = set()
    for member in data.get("new_members", []):
        record = by_email.get(str(member.get("email_address", "")).lower())
        if record and record.key not in seen:
            seen.add(record.key)
            yield record, Outcome.CREATED, "", "", _opted_in(member)
    for member in data.get("updated_members", []):
        record = by_email.get(str(member.get("email_address", "")).lower())
        if record and record.key not in seen:
            seen.add(record.key)
            yield record, Outcome.UPDATED, "", "", _opted_in(member)
    for error in data.get("errors", []):
        record = by_email.get(str(error.get("email_address", "")).lower())
        if record and record.key not in seen:
            seen.add(record.key)
            message = str(error.get("error") or "rejected")[:500]
            yield record, Outcome.REJECTED, message, str(error.get("error_code") or ""), None
    for record in records:
        if record.key not in seen:
            yield record, Outcome.RETRY, "Mailchimp did not report this member", "", None
