"""The connector base: what every vendor module provides, and the values they exchange.

A connector is one module per vendor (``integrations/connectors/<vendor>.py``), registered
explicitly in ``integrations/connectors/__init__.py``. The engine only calls this interface,
so a new vendor fits without engine changes:

- batch APIs (HubSpot, Mailchimp) return per-record results from ``upsert``;
- single-record APIs (Pardot) declare ``max_batch = 1``;
- async bulk jobs (Constant Contact import, Salesforce Bulk 2.0) return ``ACCEPTED`` results
  with a ``job_ref``; the engine calls ``poll(job_ref, records)`` later for the per-record
  outcome. A vendor whose jobs take many records (Bulk 2.0) declares ``job_size``: a run with
  more than ``job_threshold`` records to send goes in batches of that size to ``submit_job``,
  which keeps a ``JobTicket`` so that a worker taking over never submits the records twice;
- errors inside HTTP 200 bodies (Marketo) are the connector's to parse into ConnectorError
  or per-record results;
- per-organisation base URLs (Salesforce instance_url, Marketo host) come from
  ``base_url()``, which may read credentials or config;
- feedback (unsubscribes, bounces, campaign results) comes back through ``parse_webhook``
  (webhooks, with ``webhook_auth`` saying how the vendor proves who sent them) or
  ``poll_feedback`` (vendors without webhooks); ``suppress`` opts a person out of e-mail at
  the destination when consent is withdrawn elsewhere (docs/webhooks.md).
- OAuth auth kinds are declared in ``token_flows`` (``integrations.oauth.flows``): requests
  sent with ``send`` carry an access token renewed when due, and a refused token (a 401, or
  what ``token_rejected`` recognises: Marketo's 601/602 in a 200 body) renews it once and
  sends the request once more;
- a vendor that allows so many requests a day per account declares ``daily_quota``
  (``DailyQuota``: the allowance, a calendar day in the vendor's time zone or a rolling 24 h)
  and may read the vendor's own count from each answer (``quota_usage``); when the vendor says
  the day's allowance is gone (Marketo 607, Pardot 122, Salesforce REQUEST_LIMIT_EXCEEDED,
  Constant Contact ``quota_exceeded``) it raises ``self.quota_spent(message)``. The shared
  budget (``integrations.engine.quota``) counts every request against it, the planner plans a
  run to fit what is left (``quota_requests`` says what a batch costs) and records that do not
  fit are *deferred* to the next window (docs/syncs.md#daily-quotas).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from datetime import datetime
from enum import StrEnum
from typing import Any, ClassVar

from integrations.connectors.feedback import FeedbackEvent, InboundWebhook
from mktintegration.errors import ConnectorError, ErrorKind, QuotaSpent
from mktintegration.http import HttpClient, Response, retry_after_seconds


@dataclass(frozen=True)
class DestinationObject:
    """An object type a connector writes (HubSpot companies, Mailchimp audience members)."""

    name: str
    label: str
    max_batch: int
    # Unique destination fields a sync may match on (None: any field list_fields marks unique).
    match_fields: tuple[str, ...] | None = None
    # Destination config keys a sync must give for this object (e.g. Mailchimp "list_id").
    requires: tuple[str, ...] = ()
    supports_delete: bool = True
    personal_data: bool = False
    # ``Connector.suppress`` opts its records out of e-mail (people: contacts, members).
    suppressible: bool = False
    # The destination's own opt-out flag (Salesforce HasOptedOutOfEmail): a record it already
    # holds whose consent was withdrawn is written this flag = true instead of being left as it
    # was, when the sync maps the field.
    opt_out_field: str = ""

    def match_candidates(self, fields: dict[str, DestinationField]) -> list[str]:
        """The fields a sync of this object may match on, of the object's ``fields``."""
        return list(self.match_fields or [name for name, f in fields.items() if f.unique])


@dataclass(frozen=True)
class DestinationField:
    name: str
    label: str
    type: str = "string"  # the vendor's own type name, as shown to users
    unique: bool = False
    required: bool = False
    read_only: bool = False
    kind: str = "text"  # what values it takes (integrations.connectors.values.ValueKind)
    options: tuple[str, ...] = ()  # choice fields: the values the vendor accepts
    separator: str = ";"  # several choices in one value (ValueKind.CHOICES)


@dataclass(frozen=True)
class ConfigField:
    """One key of a sync's ``destination_config`` as the sync editor shows it (Mailchimp's
    audience). ``choices``, when given, asks the vendor for the values it offers (id -> name)
    through the connection's connector; ``many``: the key holds a list of them; ``flag``: the
    key is a yes/no (``true`` when ticked, absent when not)."""

    name: str
    label: str
    help: str = ""
    required: bool = False
    many: bool = False
    flag: bool = False
    # Called with the connection's connector (the vendor's own class): id -> name.
    choices: Callable[[Any], dict[str, str]] | None = field(default=None, compare=False)

    def problem(self, value: Any) -> str | None:
        """What is wrong with ``value`` stored under this key (None: nothing)."""
        if value is None:
            return None
        if self.flag:
            ok, want = isinstance(value, bool), "true or false"
        elif self.many:
            ok = isinstance(value, list) and all(isinstance(v, str) for v in value)
            want = "a list of ids (text)"
        else:
            ok, want = isinstance(value, str), "text"
        return None if ok else f"{self.name!r} is {want}, not {json.dumps(value)[:40]}."


@dataclass(frozen=True)
class RateSpec:
    requests: int
    per_seconds: float


@dataclass(frozen=True)
class DailyQuota:
    """A vendor's allowance of requests per day for one account, shared by every integration
    on it. ``requests`` is the vendor's usual allowance (a connection may set its own: plans
    differ). A calendar day starts at midnight in ``timezone`` (an IANA name, "UTC" or a fixed
    offset such as "-06:00"); ``rolling`` counts any 24 hours instead (Salesforce).

    ``reported``: the vendor's count in every answer is the truth, and it falls as well as
    rises (Salesforce's rolling 24 hours): our count is what the vendor last said plus what was
    sent since, and once the allowance is spent one request is let through every
    ``Connector.quota_recheck_seconds()`` to read the count again."""

    requests: int
    timezone: str = "UTC"
    rolling: bool = False
    reported: bool = False


@dataclass(frozen=True)
class QuotaUsage:
    """What the vendor says about the day's allowance in one answer (``Sforce-Limit-Info:
    api-usage=18/15000``, ``X-HubSpot-RateLimit-Daily-Remaining``): the requests counted in
    the current window, and the allowance when it says."""

    used: int
    limit: int | None = None


@dataclass
class OutRecord:
    """One record to write: its source key, the destination match value and the payload."""

    key: str
    match_value: str
    payload: dict[str, Any]
    destination_id: str = ""  # known from the ledger when this sync wrote it before
    known_at_destination: bool = False


class Outcome(StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"  # nothing written on purpose (e.g. create-only and it exists)
    DELETED = "deleted"
    REJECTED = "rejected"  # the vendor refused this record permanently (fix the data)
    RETRY = "retry"  # this record failed for a passing reason; try again later
    ACCEPTED = "accepted"  # queued in a vendor job; poll(job_ref) gives the outcome


@dataclass
class RecordResult:
    key: str
    outcome: Outcome
    destination_id: str = ""
    message: str = ""
    code: str = ""
    job_ref: str = ""
    # When the vendor says it created the record, if its answer says (HubSpot createdAt):
    # tells "updated" after a lost first answer from a record that was there before us.
    created_at: datetime | None = None


@dataclass
class JobTicket:
    """How far the submission of a batch's vendor job got, kept by the engine across workers.

    ``ref`` is the vendor's job id and ``stage`` the last step done: ``CREATED`` (a job exists,
    nothing confirmed in it: a worker taking over abandons it and starts again) or ``LOADED``
    (the records are in it: only closing and polling are left, never a second upload).
    ``advance`` stores both before the connector takes its next step.
    """

    CREATED: ClassVar[str] = "created"
    LOADED: ClassVar[str] = "loaded"

    ref: str = ""
    stage: str = ""
    save: Callable[[str, str], None] = field(default=lambda ref, stage: None, repr=False)

    def advance(self, ref: str, stage: str) -> None:
        self.ref, self.stage = ref, stage
        self.save(ref, stage)


@dataclass(frozen=True)
class ConnectorConfig:
    """Per-connection settings without secrets; vendors subclass it. Every setting has a
    default; one a connection must give (Pardot's business unit) is listed in ``required``
    and its config refuses the empty default with a message naming it."""

    required: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def from_dict(cls, data: dict) -> ConnectorConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown setting(s): {', '.join(unknown)}")
        return cls(**data)


class Connector:
    slug: ClassVar[str]
    label: ClassVar[str]
    auth_kinds: ClassVar[tuple[str, ...]]
    secret_fields: ClassVar[dict[str, tuple[str, ...]]]  # auth kind -> secrets typed in
    # auth kind -> its token flow (integrations.oauth.flows): tokens by Connect, or bought with
    # the connection's client credentials, and renewed by the lifecycle.
    token_flows: ClassVar[dict[str, Any]] = {}
    config_class: ClassVar[type[ConnectorConfig]] = ConnectorConfig
    objects: ClassVar[dict[str, DestinationObject]]
    default_rate: ClassVar[RateSpec]
    allowed_hosts: ClassVar[tuple[str, ...]]
    # Vendor requests one delivery task sends in a row (each at most the object's max_batch):
    # fewer tasks and commits per record. Vendors whose writes become jobs keep 1.
    requests_per_task: ClassVar[int] = 5
    # Feedback (integrations/webhooks): how the vendor's webhooks prove who sent them. "" (no
    # webhooks), "signature" (verify_webhook checks it) or "url_secret" (a secret generated
    # per connection, in the receiver URL, compared by the receiver in constant time).
    webhook_auth: ClassVar[str] = ""
    # The vendor checks the receiver URL with a GET that must answer 200 (Mailchimp).
    webhook_validation_get: ClassVar[bool] = False
    # Feedback read for as long as the connection exists (vendors without webhooks: their
    # opt-outs), as keys of ``poll_feedback``; campaign reports are polled when one is sent.
    standing_polls: ClassVar[tuple[str, ...]] = ()
    # The vendor's daily allowance per account (None: the vendor has none).
    daily_quota: ClassVar[DailyQuota | None] = None

    def __init__(self, *, connection, secrets: dict[str, str], http: HttpClient | None = None):
        self.connection = connection
        self.secrets = secrets
        self.config = self.config_class.from_dict(connection.config or {})
        self.http = http or HttpClient(
            vendor=self.slug,
            connection_id=connection.pk,
            allowed_hosts=self.allowed_hosts,
        )
        self.tokens = None
        flow = self.token_flows.get(connection.auth_kind)
        if flow is not None:
            from integrations.oauth.tokens import TokenSource

            self.tokens = TokenSource(connection=connection, flow=flow, label=self.label)

    # --- what a vendor module implements -----------------------------------------------
    def base_url(self) -> str:
        raise NotImplementedError

    def test_connection(self) -> str:
        """A short human message on success; ConnectorError saying why on failure."""
        raise NotImplementedError

    def list_fields(self, object_name: str, destination_config: dict) -> list[DestinationField]:
        raise NotImplementedError

    @classmethod
    def config_fields(cls, object_name: str) -> list[ConfigField]:
        """The ``destination_config`` keys a sync of this object sets, as the sync editor's
        fields (none: the editor shows the config as JSON)."""
        return []

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
        """Write the records (at most the object's max_batch); one result per record."""
        raise NotImplementedError

    def lookup(
        self,
        object_name: str,
        match_values: list[str],
        *,
        match_field: str,
        destination_config: dict,
    ) -> dict[str, str]:
        """Which of these match values exist at the destination: value -> destination id."""
        raise NotImplementedError

    def lookup_record(
        self,
        object_name: str,
        match_field: str,
        match_value: str,
        destination_config: dict,
        *,
        fields: tuple[str, ...] = (),
    ) -> dict[str, Any] | None:
        """Read only: the record the destination holds under this match value, as
        ``{"id": its destination id, "fields": {name: value}}`` (``fields``: the names to read,
        for vendors that return only those asked for), or None when it holds none. A vendor
        without such a read raises NotImplementedError ("Test on one record" says so)."""
        raise NotImplementedError

    def delete(
        self, object_name: str, records: list[OutRecord], *, destination_config: dict
    ) -> list[RecordResult]:
        """Archive (never permanently delete) the records this sync created."""
        raise NotImplementedError

    def poll(self, job_ref: str, records: list[OutRecord]) -> list[RecordResult] | None:
        """Async jobs: the per-record results of ``records`` (key and match value; no payload),
        or None while the job still runs."""
        raise NotImplementedError

    @classmethod
    def job_size(cls, object_name: str, *, mode: str, destination_config: dict) -> int:
        """Records one vendor job takes, for runs too large for ``upsert``'s batches (0: the
        vendor has no such jobs, or not for this object and mode)."""
        return 0

    @classmethod
    def job_threshold(cls, object_name: str) -> int:
        """A run with more records than this to send goes in jobs (when ``job_size``)."""
        return 0

    def submit_job(
        self,
        object_name: str,
        records: list[OutRecord],
        *,
        mode: str,
        match_field: str,
        destination_config: dict,
        ticket: JobTicket,
    ) -> list[RecordResult]:
        """Write up to ``job_size`` records in one vendor job: ``ACCEPTED`` results (with the
        job's ref) for the records in it, final results for any answered on the way. A ticket
        ``LOADED`` by an earlier worker means the records are in its job already (``records``
        then carry no payload): only what is left of the submission is done."""
        raise NotImplementedError

    def preview_writes(
        self,
        object_name: str,
        records: list[OutRecord],
        *,
        match_field: str,
        destination_config: dict,
    ) -> dict[str, str]:
        """For a preview: what a write of each record would do, in words ("would update Contact
        003..."), by record key; {} when the vendor cannot tell without writing."""
        return {}

    def validate_record(self, object_name: str, record: OutRecord) -> str | None:
        """A reason this record can never be accepted (bad e-mail...), or None."""
        return None

    def match_key(self, object_name: str, match_field: str, value: str) -> str:
        """``value`` as the destination compares match values: two records with the same key
        are one record there (e-mail addresses: whatever their case). Default: as it is."""
        return value

    # --- the two rules above in SQL, for first plans made in the database ------------------
    # (integrations.engine.plan_sql). Both see a match value already known to be printable
    # ASCII without spaces at its ends. None: not expressible, the records go through Python.
    def validate_record_sql(
        self, object_name: str, match_sql: str, *, fields: tuple[str, ...], pg: bool
    ) -> str | None:
        """SQL true where ``validate_record`` certainly accepts a record whose match value is
        ``match_sql`` and whose payload has ``fields``."""
        if type(self).validate_record is Connector.validate_record:
            return "1 = 1"
        return None

    def match_key_sql(self, object_name: str, match_field: str, match_sql: str) -> str | None:
        """``match_key`` in SQL (LOWER is Python's lower() on ASCII)."""
        if type(self).match_key is Connector.match_key:
            return match_sql
        return None

    # --- feedback: what the vendor tells us back (docs/webhooks.md) ------------------------
    @classmethod
    def verify_webhook(cls, request: InboundWebhook, *, connection, now: float) -> None:
        """``webhook_auth = "signature"``: raise WebhookRefused unless the request is signed
        by the vendor (and recent enough, where the vendor signs a time)."""
        raise NotImplementedError

    @classmethod
    def parse_webhook(cls, request: InboundWebhook, *, connection) -> list[FeedbackEvent]:
        """The events in an authentic request (raise WebhookRefused for a body that is not the
        vendor's shape). An empty list is a request to answer 200 and forget (a validation
        ping)."""
        raise NotImplementedError

    @classmethod
    def webhook_answer(cls, events: list[FeedbackEvent]) -> tuple[int, str, bytes]:
        """(status, content type, body) acknowledging stored events (Salesforce wants a SOAP
        Ack); default a small JSON body."""
        return 200, "application/json", b'{"received": %d}' % len(events)

    def feedback_emails(self, subject_ids: list[str]) -> dict[str, str]:
        """The e-mail addresses of people the vendor's events name only by the vendor's id
        (HubSpot's objectId): id -> address. Default: none known."""
        return {}

    def poll_feedback(self, key: str, cursor: dict) -> tuple[list[FeedbackEvent], dict, bool]:
        """Polled feedback (a vendor without webhooks, or reports read by API): the events of
        the poll ``key`` since ``cursor``, the new cursor, and whether more is ready now."""
        raise NotImplementedError

    def suppress(
        self, object_name: str, records: list[OutRecord], *, destination_config: dict
    ) -> list[RecordResult]:
        """Opt the records out of e-mail at the destination (consent was withdrawn elsewhere),
        so that nothing sent later subscribes them again; at most the object's max_batch.
        One result per record: UPDATED when the vendor confirmed, else REJECTED or RETRY."""
        raise NotImplementedError

    # --- daily quota (optional) ---------------------------------------------------------------
    def quota_account(self) -> str:
        """Who the vendor counts the daily quota for: connections to the same account share
        it (Marketo: the instance's Munchkin id). Default: the connection itself."""
        return f"connection-{self.connection.pk}"

    def quota_usage(self, response: Response) -> QuotaUsage | None:
        """The vendor's own count of the day's requests in this answer, if it reports one."""
        return None

    def quota_recheck_seconds(self) -> float:
        """With a ``reported`` quota: how long a spent account waits before one request looks
        whether the vendor's count has fallen again."""
        return 900.0

    def quota_refresh(self) -> None:
        """With a ``reported`` quota: one cheap request whose answer carries the vendor's
        count (the planner asks before it defers a run on an old count)."""

    def quota_requests(self, object_name: str, mode: str, records: int) -> int:
        """How many requests writing ``records`` records costs (the planner fits a run in what
        is left of the quota with it). Default: one request per ``max_batch`` records; add the
        look-ups a mode needs and the polls of a job."""
        size = self.objects[object_name].max_batch
        return -(-records // size)

    def quota_spent(self, message: str, *, resets_at: float | None = None) -> QuotaSpent:
        """The vendor said the day's allowance is gone: hold the account's budget until the
        window ends (or ``resets_at``, epoch seconds) and return the error to raise."""
        throttle = self.http.throttle
        exhaust = getattr(throttle, "quota_exhausted", None)
        if exhaust is not None:
            return exhaust(message, resets_at=resets_at)
        now = time.time()
        return QuotaSpent(message, resets_at=resets_at or now + 3600.0, now=now)

    def token_rejected(self, response: Response) -> bool:
        """Whether the vendor refused the access token of this answer (renewed once, and the
        request sent again). Default: a 401."""
        return response.status_code == 401

    def authenticate(self, token: str | None, headers: dict | None) -> dict[str, Any]:
        """The keyword arguments that authenticate a request: ``token`` (the OAuth access
        token, or None for a static secret) as a bearer by default."""
        return {"headers": {**(headers or {}), "Authorization": f"Bearer {token}"}}

    # --- shared helpers --------------------------------------------------------------------
    def by_mode(
        self,
        object_name: str,
        records: list[OutRecord],
        *,
        mode: str,
        match_field: str,
        destination_config: dict,
    ) -> tuple[dict[str, RecordResult], list[OutRecord]]:
        """Create-only and update-only on a vendor whose write is an upsert: one look-up, then
        (the records left as they are, the records to write)."""
        if mode not in ("create_only", "update_only"):
            return {}, records
        existing = self.lookup(
            object_name,
            [r.match_value for r in records],
            match_field=match_field,
            destination_config=destination_config,
        )
        done: dict[str, RecordResult] = {}
        to_write = []
        for record in records:
            found = existing.get(record.match_value)
            if mode == "create_only" and found:
                done[record.key] = RecordResult(
                    record.key,
                    Outcome.UNCHANGED,
                    found,
                    f"already at {self.label}; create-only leaves it alone",
                )
            elif mode == "update_only" and not found:
                done[record.key] = RecordResult(
                    record.key,
                    Outcome.UNCHANGED,
                    "",
                    f"not at {self.label}; update-only creates nothing",
                )
            else:
                to_write.append(record)
        return done, to_write

    def send(self, method: str, url: str, *, headers: dict | None = None, **kwargs) -> Response:
        """One authenticated request to the vendor. For an OAuth auth kind the access token is
        renewed when due, and a refused token (``token_rejected``: a 401) renews it once and
        sends the request once more (a refused token means nothing was applied)."""
        token = self.tokens.access_token() if self.tokens is not None else None
        response = self._observed(
            self.http.request(method, url, **self.authenticate(token, headers), **kwargs)
        )
        if self.tokens is not None and self.token_rejected(response):
            renewed = self.tokens.after_rejection(token)
            if renewed is not None:
                response = self._observed(
                    self.http.request(method, url, **self.authenticate(renewed, headers), **kwargs)
                )
        return response

    def _observed(self, response: Response) -> Response:
        """Tell the shared budget what the vendor says about the day's allowance."""
        observe = getattr(self.http.throttle, "quota_observe", None)
        if observe is not None and self.daily_quota is not None:
            usage = self.quota_usage(response)
            if usage is not None:
                observe(usage)
        return response

    def url(self, path: str) -> str:
        base = (self.connection.base_url or self.base_url()).rstrip("/")
        return f"{base}{path}"

    def raise_for_status(self, response: Response, what: str) -> None:
        """Turn an error response into a ConnectorError of the right kind."""
        status = response.status_code
        if status < 400:
            return
        message = f"{self.label} {what}: HTTP {status}: {self.error_text(response)}"
        if status == 429:
            raise ConnectorError(
                message,
                kind=ErrorKind.RATE_LIMITED,
                status=status,
                retry_after=retry_after_seconds(response),
            )
        if status == 401 and self.tokens is not None:
            message = self.tokens.with_link(f"{message}.")
        if status in (401, 403):
            raise ConnectorError(message, kind=ErrorKind.AUTH, status=status)
        if status >= 500 or status in (408, 423, 425):
            raise ConnectorError(
                message,
                kind=ErrorKind.TRANSIENT,
                status=status,
                retry_after=retry_after_seconds(response),
            )
        if status == 404:
            raise ConnectorError(message, kind=ErrorKind.CONFIG, status=status)
        raise ConnectorError(message, kind=ErrorKind.PERMANENT, status=status)

    @staticmethod
    def error_text(response: Response) -> str:
        try:
            body = response.json()
        except ValueError:
            return (response.text or "")[:300]
        if isinstance(body, dict):
            for key in ("detail", "message", "title", "error"):
                if body.get(key):
                    return str(body[key])[:300]
        return str(body)[:300]


@dataclass
class ConnectorInfo:
    """What the admin and the configure API show about a connector."""

    slug: str
    label: str
    auth_kinds: tuple[str, ...]
    objects: list[str] = field(default_factory=list)
