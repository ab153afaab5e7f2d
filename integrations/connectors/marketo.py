"""Marketo Engage: leads by Sync Leads and companies by Sync Companies, on a lookup field.

Facts from ../shared/VENDORS.md §5, paths and shapes from Marketo's own Swagger (kept in
tests/fakes/specs/marketo, the emulator's authority):

- one instance per connection: REST at ``https://{munchkinId}.mktorest.com/rest`` and the
  identity endpoint at ``.../identity`` [K1], from the connection's ``munchkin_id``;
- client credentials only (an API-only user's LaunchPoint service): the identity endpoint with
  ``grant_type``, ``client_id``, ``client_secret`` as query parameters gives a token of 3,600 s,
  the same one until it expires [K2]; sent as ``Authorization: Bearer`` (the query parameter is
  retired) [K2]. So a token is used to its end and renewed when refused;
- ``POST /rest/v1/leads.json`` with ``action`` (createOrUpdate / updateOnly / createOnly by the
  sync's mode), ``lookupField`` (the match field) and at most 300 leads, a body of at most 1 MB
  [K4][K6]; ``POST /rest/v1/companies.json`` with ``dedupeBy: dedupeFields``
  (``externalCompanyId``) [K7]; results per record in input order (companies by ``seq``),
  ``skipped`` with ``reasons`` [K6];
- errors come inside HTTP 200 bodies (``success: false``, ``errors[].code``) [K6]: 601/602 the
  token (renewed once), 606 over 100 calls in 20 s and 615 over 10 at once (wait), 607 the
  daily quota (stop until it resets at 12:00 AM CST), 604/608/611/713 transient, 603 access
  denied, 1018 companies read-only (CRM sync on); per record 1003 invalid data, 1004 not found,
  1005 exists, 1006 no such field, 1007 several matches [K6];
- rate: 100 calls per 20 s and 10 at once per instance, shared by every integration; Marketo
  asks each to keep to 50 and 5 [K9]. Daily quota about 50,000 (at least 10,000) [K9];
- fields: ``GET /rest/v1/leads/describe2.json`` (searchable fields, updateable) and
  ``/rest/v1/companies/describe.json`` (dedupe fields) [K4][K7]; types [K15];
- e-mail addresses ASCII only [K4]. Marketo's only deletes are permanent (``leads/delete``,
  ``companies/delete``) [K4][K7]: mirror mode is not offered.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

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
from integrations.connectors.feedback import FeedbackEvent, InboundWebhook
from integrations.connectors.marketo_webhook import parse_marketo
from integrations.connectors.values import ValueKind
from integrations.oauth.backends import ClientCredentialsBackend
from integrations.oauth.flows import ClientCredentials
from mktintegration.errors import ConnectorError, ErrorKind
from mktintegration.http import Response

MAX_RECORDS = 300  # [K4][K7]
MAX_BODY = 1_000_000  # bytes; Marketo answers 413 over 1 MB [K6]
MAX_LOOKUP_QUERY = 6000  # characters of filterValues (the URI may not pass 8 KB [K6])
_MUNCHKIN = re.compile(r"^\d{3}-[A-Z]{3}-\d{3}$")
_TOKEN_REFUSED = {"600", "601", "602"}
_WAITS = {"606": 20.0, "615": 5.0}  # the 20 s window [K9]; a slot among 10 calls at once
_TRANSIENT = {"604", "608", "611", "713"}
_CONFIG = {"610", "1018"}
_ACTIONS = {"create_only": "createOnly", "update_only": "updateOnly"}
_KINDS = {
    "email": ValueKind.EMAIL,
    "integer": ValueKind.NUMBER,
    "float": ValueKind.NUMBER,
    "currency": ValueKind.NUMBER,
    "percent": ValueKind.NUMBER,
    "score": ValueKind.NUMBER,
    "boolean": ValueKind.BOOL,
    "date": ValueKind.DATE,
    "datetime": ValueKind.DATETIME,
}
_READ_ONLY_TYPES = {"reference", "formula"}


@dataclass(frozen=True)
class MarketoConfig(ConnectorConfig):
    # The instance's Munchkin id (Admin > Integration > Munchkin), e.g. "284-RPR-133".
    munchkin_id: str = ""
    # The lead partition to write into, where partitions are on [K4].
    partition_name: str = ""

    def __post_init__(self):
        if self.munchkin_id and not _MUNCHKIN.match(self.munchkin_id):
            raise ValueError(
                f"munchkin_id {self.munchkin_id!r} is not a Munchkin id (like 284-RPR-133)"
            )


def instance_root(connection) -> str:
    """``https://{munchkinId}.mktorest.com`` (REST and identity live under it) [K1]."""
    munchkin = (connection.config or {}).get("munchkin_id", "")
    if not munchkin:
        raise ConnectorError(
            "Marketo: give the connection its instance's munchkin_id (Admin > Integration > "
            "Munchkin, e.g. 284-RPR-133)",
            kind=ErrorKind.CONFIG,
        )
    return f"https://{munchkin.lower()}.mktorest.com"


class MarketoIdentity(ClientCredentialsBackend):
    """The instance's identity endpoint, its parameters in the query string as Marketo's
    Swagger declares them [K2]."""

    name = "marketo-identity"

    def declared_url(self, attribute: str) -> str:
        """On the instance's host, as its REST API (a base URL override moves both)."""
        if attribute != "ACCESS_TOKEN_URL":
            return ""
        override = urlsplit(self.connection.base_url or "")
        root = (
            f"{override.scheme}://{override.netloc}"
            if override.netloc
            else instance_root(self.connection)
        )
        return f"{root}/identity/oauth/token"

    def fetch(self):
        key, secret = self.client_id_and_secret()
        response = self.request_access_token(
            self.access_token_url(),
            method="POST",
            headers={"Accept": "application/json"},
            params={"grant_type": "client_credentials", "client_id": key, "client_secret": secret},
            stage="token_exchange",
        )
        self.get_access_token(response)
        return self.token_answer(response)


def _body(response: Response) -> dict:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _first_error(body: dict) -> tuple[str, str]:
    for error in body.get("errors") or ():
        if isinstance(error, dict):
            return str(error.get("code") or ""), str(error.get("message") or "")
    return "", "no reason given"


def _reason(item: dict) -> tuple[str, str]:
    """A skipped record's first reason: (code, message) [K6]."""
    reasons = item.get("reasons") or ([item["reason"]] if item.get("reason") else [])
    for reason in reasons:
        if isinstance(reason, dict):
            return str(reason.get("code") or ""), str(reason.get("message") or "skipped")
    return "", "skipped"


@register
class Marketo(Connector):
    slug = "marketo"
    label = "Marketo"
    auth_kinds = ("client_credentials",)
    secret_fields = {"client_credentials": ("client_id", "client_secret")}
    token_flows = {
        "client_credentials": ClientCredentials(backend=MarketoIdentity, renew_margin_seconds=0)
    }
    config_class = MarketoConfig
    config: MarketoConfig
    objects = {
        "leads": DestinationObject(
            "leads",
            "Leads",
            MAX_RECORDS,
            supports_delete=False,
            personal_data=True,
            suppressible=True,
        ),
        "companies": DestinationObject(
            "companies",
            "Companies",
            MAX_RECORDS,
            match_fields=("externalCompanyId",),
            supports_delete=False,
        ),
    }
    default_rate = RateSpec(requests=50, per_seconds=20)  # Marketo's ask of each integration [K9]
    # About 50,000 calls a day (plans differ: set the connection's own), reset at 12:00 AM CST
    # [K9]; a fixed -06:00, the later of CST and CDT, so our day never starts before Marketo's.
    daily_quota = DailyQuota(requests=50_000, timezone="-06:00")
    allowed_hosts = ("*.mktorest.com",)
    # Trigger campaigns' "Call Webhook": no signature, our secret in the URL or a header [K13].
    webhook_auth = "url_secret"

    def base_url(self) -> str:
        return f"{instance_root(self.connection)}/rest"

    def url(self, path: str) -> str:
        """A base URL override may name the host alone (an emulator): the API is under /rest."""
        base = (self.connection.base_url or self.base_url()).rstrip("/")
        if not base.endswith("/rest"):
            base += "/rest"
        return f"{base}{path}"

    def quota_account(self) -> str:
        """The instance: every connection to it shares its daily quota [K9]."""
        if self.config.munchkin_id:
            return self.config.munchkin_id.upper()
        host = urlsplit(self.connection.base_url or "").netloc
        return host or super().quota_account()

    def quota_usage(self, response: Response) -> QuotaUsage | None:
        """The day's calls of every user of the instance, where Marketo says (``stats/usage``)
        [K11]."""
        if not urlsplit(response.url or "").path.endswith("/stats/usage.json"):
            return None
        result = _body(response).get("result") or []
        if result and isinstance(result[0], dict) and isinstance(result[0].get("total"), int):
            return QuotaUsage(used=result[0]["total"])
        return None

    def token_rejected(self, response: Response) -> bool:
        """A 401, or 600/601/602 in a 200 body [K6]."""
        if response.status_code == 401:
            return True
        if response.status_code != 200:
            return False
        body = _body(response)
        return body.get("success") is False and _first_error(body)[0] in _TOKEN_REFUSED

    # --- requests --------------------------------------------------------------------------
    def _call(self, method: str, path: str, *, what: str, records: int = 0, **kwargs) -> dict:
        """One request; its body when Marketo says ``success``, else the error by kind."""
        response = self.send(method, self.url(path), records=records, **kwargs)
        self.raise_for_status(response, what)
        body = _body(response)
        if body.get("success") is not False:
            return body
        code, message = _first_error(body)
        text = f"Marketo {what}: {code} {message}".strip()
        if code in _WAITS:
            self.http.rate_limited += 1
            wait = _WAITS[code]
            if self.http.throttle is not None:
                self.http.throttle.block(wait)
            raise ConnectorError(text, kind=ErrorKind.RATE_LIMITED, retry_after=wait)
        if code == "607":
            raise self.quota_spent(text)
        if code in _TOKEN_REFUSED or code == "603":
            raise ConnectorError(f"{text} (check the API user's role)", kind=ErrorKind.AUTH)
        if code in _TRANSIENT:
            raise ConnectorError(text, kind=ErrorKind.TRANSIENT)
        if code in _CONFIG:
            raise ConnectorError(text, kind=ErrorKind.CONFIG)
        raise ConnectorError(text, kind=ErrorKind.PERMANENT)

    def test_connection(self) -> str:
        body = self._call("GET", "/v1/stats/usage.json", what="test")
        result = body.get("result") or [{}]
        return f"Connected: {result[0].get('total', 0):,} API calls on the instance today"

    def list_fields(self, object_name: str, destination_config: dict) -> list[DestinationField]:
        if object_name == "leads":
            describe = self._call("GET", "/v1/leads/describe2.json", what="describe leads")
            meta = (describe.get("result") or [{}])[0]
            unique = {s[0] for s in meta.get("searchableFields") or () if len(s) == 1}
            unique.discard("id")  # a lookup on id may only update [K4]
        else:
            describe = self._call("GET", "/v1/companies/describe.json", what="describe companies")
            meta = (describe.get("result") or [{}])[0]
            unique = set(meta.get("dedupeFields") or ())
        return [
            DestinationField(
                name=item["name"],
                label=item.get("displayName") or item["name"],
                type=item.get("dataType", "string"),
                unique=item["name"] in unique,
                read_only=not item.get("updateable", True)
                or item.get("dataType") in _READ_ONLY_TYPES,
                kind=_KINDS.get(item.get("dataType", ""), ValueKind.TEXT),
            )
            for item in meta.get("fields") or ()
            if item.get("name")
        ]

    def validate_record(self, object_name: str, record: OutRecord) -> str | None:
        if (
            object_name == "leads"
            and "@" in record.match_value
            and not record.match_value.isascii()
        ):
            return f"{record.match_value!r}: Marketo takes ASCII e-mail addresses only"
        return None

    def match_key(self, object_name: str, match_field: str, value: str) -> str:
        return value.lower() if match_field == "email" else value

    def match_key_sql(self, object_name: str, match_field: str, match_sql: str) -> str | None:
        return f"LOWER({match_sql})" if match_field == "email" else match_sql

    def validate_record_sql(
        self, object_name: str, match_sql: str, *, fields: tuple[str, ...], pg: bool
    ) -> str | None:
        return "1 = 1"  # the value is ASCII, the one thing validate_record checks

    def lookup(
        self,
        object_name: str,
        match_values: list[str],
        *,
        match_field: str,
        destination_config: dict,
    ) -> dict[str, str]:
        found: dict[str, str] = {}
        for chunk in _lookup_chunks(match_values):
            body = self._call(
                "GET",
                f"/v1/{object_name}.json",
                what="look-up",
                params={
                    "filterType": match_field,
                    "filterValues": ",".join(chunk),
                    "fields": f"id,{match_field}",
                },
            )
            for item in body.get("result") or ():
                if item.get(match_field) is not None and item.get("id"):
                    found[self.match_key(object_name, match_field, str(item[match_field]))] = str(
                        item["id"]
                    )
        return {
            value: found[key]
            for value in match_values
            if (key := self.match_key(object_name, match_field, value)) in found
        }

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
        action = _ACTIONS.get(mode, "createOrUpdate")
        if object_name == "leads":
            body = {"action": action, "lookupField": match_field}
            if self.config.partition_name:
                body["partitionName"] = self.config.partition_name
        else:
            body = {"action": action, "dedupeBy": "dedupeFields"}
        return self._sync(object_name, records, body, mode=mode)

    @classmethod
    def parse_webhook(cls, request: InboundWebhook, *, connection) -> list[FeedbackEvent]:
        return parse_marketo(request)

    def feedback_emails(self, subject_ids: list[str]) -> dict[str, str]:
        """Lead ids an event named without an address: their e-mail addresses."""
        found = {}
        for chunk in _lookup_chunks(subject_ids):
            body = self._call(
                "GET",
                "/v1/leads.json",
                what="look-up",
                params={"filterType": "id", "filterValues": ",".join(chunk), "fields": "id,email"},
            )
            for item in body.get("result") or ():
                if item.get("id") and item.get("email"):
                    found[str(item["id"])] = str(item["email"])
        return found

    def suppress(
        self, object_name: str, records: list[OutRecord], *, destination_config: dict
    ) -> list[RecordResult]:
        """Opt the leads out: ``unsubscribed: true`` by Sync Leads with ``updateOnly`` (by the
        lead's id where we know it, else by e-mail), so nothing is created [K4]. Our upserts
        never send ``unsubscribed`` unless a sync maps it, so a later sync leaves it set."""
        if object_name != "leads":
            raise ConnectorError(
                f"Marketo {object_name} are not people: nothing to unsubscribe",
                kind=ErrorKind.CONFIG,
            )
        by_id = [r for r in records if r.destination_id.isdigit()]
        by_email = [r for r in records if not r.destination_id.isdigit()]
        results: list[RecordResult] = []
        for lookup, group in (("id", by_id), ("email", by_email)):
            if not group:
                continue
            marked = [
                OutRecord(
                    r.key,
                    r.match_value,
                    {
                        lookup: int(r.destination_id) if lookup == "id" else r.match_value,
                        "unsubscribed": True,
                    },
                    r.destination_id,
                    True,
                )
                for r in group
            ]
            body: dict = {"action": "updateOnly", "lookupField": lookup}
            if self.config.partition_name:
                body["partitionName"] = self.config.partition_name
            for result in self._sync("leads", marked, body, mode="update_only"):
                if result.outcome == Outcome.UNCHANGED:  # no such lead at Marketo any more
                    result = RecordResult(
                        result.key, Outcome.REJECTED, "", "not in Marketo: nothing to opt out"
                    )
                results.append(result)
        return results

    def _sync(self, object_name, records, body, *, mode) -> list[RecordResult]:
        """One Sync request, split in halves while its body would pass 1 MB [K6]."""
        data = {**body, "input": [dict(r.payload) for r in records]}
        if len(records) > 1 and len(json.dumps(data, default=str)) > MAX_BODY:
            half = len(records) // 2
            return self._sync(object_name, records[:half], body, mode=mode) + self._sync(
                object_name, records[half:], body, mode=mode
            )
        answer = self._call(
            "POST",
            f"/v1/{object_name}.json",
            what=f"sync {object_name}",
            records=len(records),
            data=json.dumps(data, default=str),
            headers={"Content-Type": "application/json"},
        )
        items = answer.get("result") or []
        if object_name == "companies":
            by_seq = {item.get("seq"): item for item in items if isinstance(item, dict)}
            items = [by_seq.get(i) for i in range(len(records))]
        return [_outcome(record, item, mode) for record, item in _pad(records, items)]


def _pad(records, items):
    for index, record in enumerate(records):
        yield record, items[index] if index < len(items) else None


def _outcome(record: OutRecord, item: dict | None, mode: str) -> RecordResult:
    if not isinstance(item, dict):
        return RecordResult(record.key, Outcome.RETRY, "", "Marketo did not report this record")
    status = item.get("status")
    record_id = str(item.get("id") or "")
    if status == "created":
        return RecordResult(record.key, Outcome.CREATED, record_id)
    if status == "updated":
        return RecordResult(record.key, Outcome.UPDATED, record_id)
    if status == "skipped":
        code, message = _reason(item)
        if mode == "update_only" and code in ("1004", "1013"):
            return RecordResult(
                record.key, Outcome.UNCHANGED, "", "not in Marketo; update-only creates nothing"
            )
        if mode == "create_only" and code in ("1005", "1017"):
            return RecordResult(
                record.key,
                Outcome.UNCHANGED,
                "",
                "already in Marketo; create-only leaves it alone",
            )
        return RecordResult(
            record.key, Outcome.REJECTED, "", f"Marketo {code}: {message}"[:500], code
        )
    return RecordResult(
        record.key, Outcome.RETRY, record_id, f"Marketo answered status {status!r} for it"
    )


def _lookup_chunks(values: list[str]):
    """At most 300 values, and few enough characters for Marketo's 8 KB URI [K4][K6]."""
    chunk: list[str] = []
    size = 0
    for value in dict.fromkeys(values):
        if chunk and (len(chunk) == MAX_RECORDS or size + len(value) * 3 > MAX_LOOKUP_QUERY):
            yield chunk
            chunk, size = [], 0
        chunk.append(value)
        size += len(value) * 3 + 3  # %-encoded at worst
    if chunk:
        yield chunk
