"""Consent: the one interface to whether a person agreed to a purpose, and the one write.

Two implementations, chosen per deployment by ``MKT_CONSENT_URL``:

- **local** (no URL): the backbone's ``ConsentRecord`` table, the latest record per contact and
  purpose in force (``consent_local``). The sync planner reads it inside its source query
  (``column_sql``), so the local path costs no call per record.
- **http** (a URL): the company's consent service over the JSON contract in
  ``docs/consent-service.openapi.yaml`` (``consent_http``): batch lookups of many subjects and
  one purpose, short timeouts, a small cache whose TTL a setting bounds.

A subject is a backbone contact id. When the service cannot answer, the decision says so
(``unavailable``); callers never treat that as consent (fail closed). See docs/consent.md.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from django.conf import settings

from exports.backbone.models import ConsentChannel, ConsentPurpose, ConsentStatus

LOCAL, HTTP = "local", "http"
NEVER_GIVEN = ""  # the status of a subject with no record for the purpose
MAX_EVIDENCE_BYTES = 16_384  # a reference to the raw event, not the event itself


class ConsentUnavailable(Exception):
    """The consent service gave no usable answer (timeout, 5xx, refused, malformed)."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class ConsentInputError(ValueError):
    """A consent write with a bad field: ``field`` names it, the message the allowed values."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field


@dataclass(frozen=True, slots=True)
class ConsentDecision:
    """One subject's consent for one purpose, as one source said it at ``checked_at``.

    ``reference`` is the evidence: the ConsentRecord id (local) or the service's version of the
    subject's consent (http); empty when no consent was ever given. ``unavailable`` says why
    no answer could be had (then ``status`` is empty and nothing may be sent).
    """

    subject: str
    purpose: str
    status: str
    source: str
    reference: str
    checked_at: datetime
    unavailable: str = ""

    @property
    def granted(self) -> bool:
        return not self.unavailable and self.status == ConsentStatus.GRANTED


class ConsentProvider(Protocol):
    source: str

    def column_sql(self, *, subject_sql: str, purpose: str) -> tuple[str, list[Any]]:
        """The SQL expression (and its parameters) a source query selects, per row, for the
        row's consent: what ``decide_values`` turns into decisions."""
        ...

    def granted_sql(self, *, subject_sql: str, purpose: str) -> tuple[str, list[Any]] | None:
        """SQL true where the row's consent is granted, for plans made in the database; None
        where only the provider itself can tell (a service): those rows are planned in Python."""
        ...

    def decide_values(
        self, *, values: Sequence[Any], purpose: str, fresh: bool = False
    ) -> list[ConsentDecision]:
        """One decision per value selected by ``column_sql``, in order. ``fresh``: ask the
        source itself, not a cached answer (the send-time check)."""
        ...

    def lookup(
        self, *, subjects: Sequence[str], purpose: str, fresh: bool = False
    ) -> dict[str, ConsentDecision]:
        """The decision for each subject (unavailable ones say so)."""
        ...

    def record(
        self,
        *,
        contact_id: int,
        purpose: str,
        status: str,
        source: str,
        evidence: dict,
        channel: str,
    ) -> ConsentDecision:
        """Record one consent event; the decision now in force. ConsentUnavailable if the
        service did not take it."""
        ...


_PROVIDERS: dict[tuple, ConsentProvider] = {}


def consent_provider() -> ConsentProvider:
    """The deployment's provider (one per process and configuration: its cache is shared)."""
    url = settings.MKT_CONSENT_URL
    if not url:
        from exports.backbone.providers.consent_local import LocalConsent

        return LocalConsent()
    key = (
        url,
        settings.MKT_CONSENT_TOKEN,
        settings.MKT_CONSENT_TIMEOUT_SECONDS,
        settings.MKT_CONSENT_BATCH_SIZE,
        settings.MKT_CONSENT_CACHE_SECONDS,
    )
    provider = _PROVIDERS.get(key)
    if provider is None:
        from exports.backbone.providers.consent_http import HttpConsent

        if len(_PROVIDERS) > 8:
            _PROVIDERS.clear()
        provider = _PROVIDERS[key] = HttpConsent(
            url=url,
            token=settings.MKT_CONSENT_TOKEN,
            timeout=settings.MKT_CONSENT_TIMEOUT_SECONDS,
            batch_size=settings.MKT_CONSENT_BATCH_SIZE,
            cache_seconds=settings.MKT_CONSENT_CACHE_SECONDS,
        )
    return provider


def consent_lookup(
    *, subjects: Sequence[str | int], purpose: str, fresh: bool = False
) -> dict[str, ConsentDecision]:
    """Each subject's (contact id's) consent for ``purpose``, keyed by the id as text."""
    _check_choice("purpose", purpose, ConsentPurpose.values)
    return consent_provider().lookup(
        subjects=[str(s) for s in subjects], purpose=purpose, fresh=fresh
    )


def consent_record(
    *,
    contact_id: int,
    purpose: str,
    status: str,
    source: str,
    evidence: dict,
    channel: str = ConsentChannel.EMAIL,
) -> ConsentDecision:
    """Record a consent event (a withdrawal from a vendor's unsubscribe, say) with its
    evidence (what the caller can show later: vendor, event id, time, raw reference).

    Local table: inserts a ConsentRecord. HTTP service: POSTs it (ConsentUnavailable when the
    service does not take it: retry later). Bad input raises ConsentInputError naming the field.
    """
    if not isinstance(contact_id, int) or isinstance(contact_id, bool) or contact_id < 1:
        raise ConsentInputError("contact_id", "a positive whole number (a backbone contact id)")
    _check_choice("purpose", purpose, ConsentPurpose.values)
    _check_choice("status", status, ConsentStatus.values)
    _check_choice("channel", channel, ConsentChannel.values)
    if not isinstance(source, str) or not source.strip() or len(source) > 64:
        raise ConsentInputError("source", "who says so, 1 to 64 characters (e.g. 'hubspot')")
    try:
        size = len(json.dumps(evidence)) if isinstance(evidence, dict) else None
    except (TypeError, ValueError):
        size = None
    if size is None:
        raise ConsentInputError("evidence", "a JSON object (vendor, event id, time, reference)")
    if size > MAX_EVIDENCE_BYTES:
        raise ConsentInputError("evidence", f"at most {MAX_EVIDENCE_BYTES} bytes of JSON")
    return consent_provider().record(
        contact_id=contact_id,
        purpose=purpose,
        status=status,
        source=source.strip(),
        evidence=evidence,
        channel=channel,
    )


def _check_choice(field: str, value: object, allowed: list[str]) -> None:
    if value not in allowed:
        raise ConsentInputError(field, f"one of {', '.join(allowed)}, not {value!r}")
