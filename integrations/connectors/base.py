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
- OAuth auth kinds are declared in ``token_flows`` (``integrations.oauth.flows``): requests
  sent with ``send`` carry an access token renewed when due, and a 401 renews it once and sends
  the request once more.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields
from datetime import datetime
from enum import StrEnum
from typing import Any, ClassVar

from mktintegration.errors import ConnectorError, ErrorKind
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
    # The destination's own opt-out flag (Salesforce HasOptedOutOfEmail): a record it already
    # holds whose consent was withdrawn is written this flag = true instead of being left as it
    # was, when the sync maps the field.
    opt_out_field: str = ""


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
class RateSpec:
    requests: int
    per_seconds: float


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

    def authenticate(self, token: str | None, headers: dict | None) -> dict[str, Any]:
        """The keyword arguments that authenticate a request: ``token`` (the OAuth access
        token, or None for a static secret) as a bearer by default."""
        return {"headers": {**(headers or {}), "Authorization": f"Bearer {token}"}}

    def token_rejected(self, response: Response) -> bool:
        """Whether the vendor refused the access token itself (renew once and resend): a 401
        by default; vendors that say so in the body too (Pardot's code 184) override it."""
        return response.status_code == 401

    # --- shared helpers --------------------------------------------------------------------
    def send(self, method: str, url: str, *, headers: dict | None = None, **kwargs) -> Response:
        """One authenticated request to the vendor. For an OAuth auth kind the access token is
        renewed when due, and a refused token (``token_rejected``: a 401) renews it once and
        sends the request once more (a refused token means nothing was applied)."""
        token = self.tokens.access_token() if self.tokens is not None else None
        response = self.http.request(method, url, **self.authenticate(token, headers), **kwargs)
        if self.tokens is not None and self.token_rejected(response):
            renewed = self.tokens.after_rejection(token)
            if renewed is not None:
                response = self.http.request(
                    method, url, **self.authenticate(renewed, headers), **kwargs
                )
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
