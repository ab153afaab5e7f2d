"""Consent from the company's consent service, over the JSON contract of
docs/consent-service.openapi.yaml, through the one HTTP client (timeouts, address guard,
outbound log).

Look-ups go in batches (many subjects, one purpose, at most ``batch_size`` per request) and
fail fast: after one request of a call fails, the rest of that call is not asked and comes
back unavailable, so a call waits at most one timeout. Answers are kept in a small
per-process cache for ``cache_seconds``; ``fresh`` look-ups (the send-time check) skip it.
An answer that is not exactly the contract's (a subject missing or unasked, an unknown status,
not JSON) counts as no answer at all: nothing in it is trusted.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from exports.backbone.providers.consent import (
    HTTP,
    NEVER_GIVEN,
    ConsentDecision,
    ConsentInputError,
    ConsentUnavailable,
)
from mktintegration.errors import ConnectorError
from mktintegration.http import HttpClient, check_url

LOOKUP_PATH = "/v1/consent/lookup"
RECORDS_PATH = "/v1/consent/records"
# The service's statuses; "unknown" (no consent ever given) is our NEVER_GIVEN.
_STATUSES = {"granted": "granted", "withdrawn": "withdrawn", "denied": "denied"}
_UNKNOWN = "unknown"
CACHE_MAX_ENTRIES = 20_000  # a few MB per process


class TtlCache:
    """At most ``max_entries`` values, each for ``ttl`` seconds (time.time), thread-safe;
    the oldest go first when it is full."""

    def __init__(self, *, ttl: float, max_entries: int = CACHE_MAX_ENTRIES):
        self.ttl = ttl
        self.max_entries = max_entries
        self._items: OrderedDict[Any, tuple[float, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key):
        if self.ttl <= 0:
            return None
        with self._lock:
            item = self._items.get(key)
            if item is None:
                return None
            if item[0] <= time.time():
                del self._items[key]
                return None
            return item[1]

    def put(self, key, value) -> None:
        if self.ttl <= 0:
            return
        with self._lock:
            self._items.pop(key, None)
            self._items[key] = (time.time() + self.ttl, value)
            while len(self._items) > self.max_entries:
                self._items.popitem(last=False)

    def discard(self, key) -> None:
        with self._lock:
            self._items.pop(key, None)


class HttpConsent:
    source = HTTP

    def __init__(
        self, *, url: str, token: str, timeout: float, batch_size: int, cache_seconds: int
    ):
        self.url = url.rstrip("/")
        self.token = token
        self.timeout = (timeout, timeout)
        self.batch_size = batch_size
        self.cache = TtlCache(ttl=cache_seconds)
        self.host = (urlsplit(self.url).hostname or "").lower()
        self._checked = False

    # --- the provider interface ------------------------------------------------------------
    def column_sql(self, *, subject_sql: str, purpose: str) -> tuple[str, list[Any]]:
        return subject_sql, []  # the subject's id; decide_values asks the service

    def granted_sql(self, *, subject_sql: str, purpose: str) -> tuple[str, list[Any]] | None:
        return None  # only the service can tell

    def decide_values(
        self, *, values: Sequence[Any], purpose: str, fresh: bool = False
    ) -> list[ConsentDecision]:
        subjects = ["" if value is None else str(value) for value in values]
        found = self.lookup(subjects=[s for s in subjects if s], purpose=purpose, fresh=fresh)
        now = timezone.now()
        return [
            found.get(s) or ConsentDecision(s, purpose, NEVER_GIVEN, HTTP, "", now)
            for s in subjects
        ]

    def lookup(
        self, *, subjects: Sequence[str], purpose: str, fresh: bool = False
    ) -> dict[str, ConsentDecision]:
        found: dict[str, ConsentDecision] = {}
        todo = []
        for subject in dict.fromkeys(subjects):
            cached = None if fresh else self.cache.get((purpose, subject))
            if cached is not None:
                found[subject] = cached
            else:
                todo.append(subject)
        failure = ""
        for start in range(0, len(todo), self.batch_size):
            chunk = todo[start : start + self.batch_size]
            answers: dict[str, ConsentDecision] = {}
            if not failure:  # fail fast: one timeout per call at most
                try:
                    answers = self._ask(chunk, purpose)
                except ConsentUnavailable as exc:
                    failure = exc.message
            now = timezone.now()
            for subject in chunk:
                decision = answers.get(subject)
                if decision is None:
                    decision = ConsentDecision(
                        subject, purpose, NEVER_GIVEN, HTTP, "", now, unavailable=failure
                    )
                else:
                    self.cache.put((purpose, subject), decision)
                found[subject] = decision
        return found

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
        subject = str(contact_id)
        self.cache.discard((purpose, subject))
        response = self._post(
            RECORDS_PATH,
            {
                "subject": subject,
                "purpose": purpose,
                "status": status,
                "channel": channel,
                "source": source,
                "evidence": evidence,
            },
            records=1,
        )
        if response.status_code in (400, 422):
            raise ConsentInputError("record", f"the consent service refused it: {_text(response)}")
        if response.status_code not in (200, 201):
            raise ConsentUnavailable(f"consent service answered {response.status_code}")
        body = _json(response)
        if not isinstance(body, dict) or body.get("subject") != subject:
            raise ConsentUnavailable("consent service answer is not the contract's")
        decision = _decision(body, purpose, timezone.now())
        self.cache.put((purpose, subject), decision)
        return decision

    # --- the wire --------------------------------------------------------------------------
    def _ask(self, subjects: list[str], purpose: str) -> dict[str, ConsentDecision]:
        response = self._post(
            LOOKUP_PATH, {"purpose": purpose, "subjects": subjects}, records=len(subjects)
        )
        if response.status_code != 200:
            raise ConsentUnavailable(f"consent service answered {response.status_code}")
        body = _json(response)
        results = body.get("results") if isinstance(body, dict) else None
        if not isinstance(results, list) or body.get("purpose", purpose) != purpose:
            raise ConsentUnavailable("consent service answer is not the contract's (no results)")
        now = timezone.now()
        answers: dict[str, ConsentDecision] = {}
        asked = set(subjects)
        for item in results:
            subject = item.get("subject") if isinstance(item, dict) else None
            if subject not in asked or subject in answers:
                raise ConsentUnavailable(
                    "consent service answer is not the contract's (a subject not asked for, "
                    "or twice)"
                )
            answers[subject] = _decision(item, purpose, now)
        if len(answers) != len(asked):
            raise ConsentUnavailable(
                f"consent service answered for {len(answers)} of {len(asked)} subjects"
            )
        return answers

    def _post(self, path: str, body: dict, *, records: int):
        self._check()
        client = HttpClient(
            vendor="consent",
            allowed_hosts=(self.host,),
            timeout=self.timeout,
            ca_bundle=settings.MKT_HTTP_CA_BUNDLE,
        )
        try:
            return client.request(
                "POST",
                self.url + path,
                json=body,
                headers={"Authorization": f"Bearer {self.token}", "Accept": "application/json"},
                records=records,
            )
        except ConnectorError as exc:  # "consent: request timed out" -> "request timed out"
            raise ConsentUnavailable(exc.message.removeprefix(f"{client.vendor}: ")) from None

    def _check(self) -> None:
        """The URL may be reached (https, or an allow-listed test host; a public address or an
        allow-listed one): checked once per process."""
        if self._checked:
            return
        try:
            check_url(self.url)
        except ConnectorError as exc:
            raise ConsentUnavailable(f"MKT_CONSENT_URL: {exc.message}") from None
        self._checked = True


def _json(response) -> Any:
    try:
        return response.json()
    except ValueError:
        raise ConsentUnavailable("consent service answer is not JSON") from None


def _text(response) -> str:
    return " ".join(response.text.split())[:300]


def _decision(item: dict, purpose: str, now: datetime) -> ConsentDecision:
    status = item.get("status")
    version = item.get("version")
    if status == _UNKNOWN:
        status = NEVER_GIVEN
    elif status in _STATUSES:
        status = _STATUSES[status]
    else:
        raise ConsentUnavailable(
            f"consent service answer is not the contract's (status {str(status)[:40]!r})"
        )
    if version is None:
        version = ""
    if not isinstance(version, str) or len(version) > 100:
        raise ConsentUnavailable("consent service answer is not the contract's (version)")
    if status and not version:
        raise ConsentUnavailable("consent service answer is not the contract's (no version)")
    recorded = item.get("recorded_at")
    if recorded is not None and (not isinstance(recorded, str) or parse_datetime(recorded) is None):
        raise ConsentUnavailable("consent service answer is not the contract's (recorded_at)")
    return ConsentDecision(str(item["subject"]), purpose, status, HTTP, version, now)
