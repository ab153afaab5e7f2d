"""``FakeConsentService``: the company's consent service as a real HTTP server on 127.0.0.1,
speaking the contract of docs/consent-service.openapi.yaml (``spec()`` holds requests and
answers to it).

Answers per subject (``set_consent``), and misbehaves on demand: slow (``set_slow``), failing
(``fail_next`` with ``writes_only=False``, or ``set_down``: every request a 503), flapping
(``set_flapping``: up and down at random, seeded), malformed
(``fail_next(n, 200, body=...)``) or gone (``stop()``; ``start()`` again reuses the port).
"""

from __future__ import annotations

import itertools
import random
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from tests.fakes.base import FakeVendor
from tests.fakes.limits import RateStatus
from tests.fakes.openapi import OpenAPISpec
from tests.fakes.routing import Auth
from tests.fakes.wire import Request, Response

LOOKUP = "/v1/consent/lookup"
RECORDS = "/v1/consent/records"
MAX_BATCH = 1000  # the contract's maxItems
PURPOSES = ("email_marketing", "newsletter", "product_updates", "profiling")
SPEC_FILE = Path(__file__).resolve().parents[2] / "docs" / "consent-service.openapi.yaml"


@cache
def spec() -> OpenAPISpec:
    """The contract, as published in docs/."""
    return OpenAPISpec(yaml.safe_load(SPEC_FILE.read_text()))


def _error(status: int, message: str) -> Response:
    return Response(status, {"error": message})


class FakeConsentService(FakeVendor):
    name = "consent"
    nominal_rate_limit = (10_000, 1.0)
    auth_hint = "expected 'Authorization: Bearer <MKT_CONSENT_TOKEN>'"

    def __init__(
        self,
        *,
        token: str = "consent-test-token",  # noqa: S107 - a fixed test-only credential
        host: str = "127.0.0.1",
        port: int = 0,
    ):
        self.token = token
        super().__init__(host=host, port=port)

    @property
    def credential(self) -> str:
        return self.token

    # -- test helpers ---------------------------------------------------------------------

    def set_consent(self, subject, purpose: str, status: str) -> str:
        """The consent now in force for ``subject`` (a contact id) and ``purpose``; returns
        its new version."""
        with self._lock:
            return self._put(str(subject), purpose, status)

    def consent(self, subject, purpose: str) -> tuple[str, str]:
        """(status, version) in force; ("unknown", "") when none was ever recorded."""
        with self._lock:
            return self._consents.get((str(subject), purpose), ("unknown", "", ""))[:2]

    def set_slow(self, seconds: float) -> None:
        """Every look-up from now on is answered ``seconds`` late (0: on time again)."""
        with self._lock:
            self._faults = type(self._faults)()
        if seconds:
            self.delay_next(10**9, seconds, apply_first=False, writes_only=False)

    def set_down(self, down: bool = True) -> None:
        """Every request gets a 503 while ``down`` (the process is up, the service is not)."""
        with self._lock:
            self._down = down

    def set_flapping(self, down_share: float = 0.5, *, seed: int = 0) -> None:
        """Each request from now on is answered, or refused with a 503, at random: refused
        with probability ``down_share`` (0: off), from a seeded generator, so a test sees the
        same sequence every time (a strict up/down alternation would lock step with the
        engine's look-ups and answer the same ones every time)."""
        with self._lock:
            self._flap = random.Random(seed) if down_share else None
            self._flap_share = down_share

    def lookups(self) -> list:
        """The look-up requests received (answered or not)."""
        return self.calls(LOOKUP, "POST")

    def subjects_asked(self) -> list[str]:
        return [s for call in self.lookups() for s in (call.body or {}).get("subjects", [])]

    def problems(self) -> list[str]:
        """Every recorded request off the contract, and every answer off it that was not an
        injected fault (those are off it on purpose)."""
        contract = spec()
        found = list(self.violations)
        for recorded in self.requests:
            found += contract.request_problems(recorded)
            if recorded.outcome == "handled":
                found += contract.response_problems(recorded)
        return found

    # -- FakeVendor hooks -----------------------------------------------------------------

    def reset_store(self) -> None:
        self._consents: dict[tuple[str, str], tuple[str, str, str]] = {}
        self._versions = itertools.count(1)
        self._down = False
        self._flap: random.Random | None = None
        self._flap_share = 0.0
        self._events: list[dict] = []

    def register_routes(self) -> None:
        self.add_route("POST", LOOKUP, self._lookup, validate=self._check_lookup, json_body=True)
        self.add_route(
            "POST",
            RECORDS,
            self._record_event,
            validate=self._check_record,
            write=True,
            json_body=True,
        )

    def authenticate(self, req: Request) -> Auth:
        header = req.header("authorization")
        if header is None:
            return Auth.MISSING
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return Auth.MALFORMED
        return Auth.OK if token.strip() == self.token else Auth.WRONG

    def unauthorized_response(self, req: Request, auth: Auth) -> Response:
        return _error(401, "a valid bearer token is required")

    def not_found_response(self, req: Request, method_not_allowed: bool) -> Response:
        return _error(405 if method_not_allowed else 404, f"no {req.method} {req.path}")

    def invalid_response(self, req: Request, problems: list[str]) -> Response:
        return _error(400, "; ".join(problems))

    def rate_limited_response(self, req: Request, rate: RateStatus, concurrency: bool) -> Response:
        return Response(429, {"error": "slow down"}, headers={"Retry-After": "1"})

    def fault_response(self, status: int) -> Response:
        return _error(status, "consent service unavailable")

    # -- validators -----------------------------------------------------------------------

    @staticmethod
    def _body_problems(req: Request) -> tuple[dict, list[str]]:
        """The JSON object body and its purpose's problem, shared by both routes."""
        body = req.body if isinstance(req.body, dict) else {}
        if not isinstance(req.body, dict):
            return body, ["body must be a JSON object"]
        if body.get("purpose") not in PURPOSES:
            return body, [f"unknown purpose {body.get('purpose')!r}"]
        return body, []

    def _check_lookup(self, req: Request) -> list[str]:
        body, problems = self._body_problems(req)
        subjects = body.get("subjects")
        if not isinstance(subjects, list) or not subjects:
            problems.append("subjects must be a non-empty list")
        elif len(subjects) > MAX_BATCH:
            problems.append(f"{len(subjects)} subjects in one request; at most {MAX_BATCH}")
        elif len(set(map(str, subjects))) != len(subjects):
            problems.append("a subject asked for twice")
        return problems

    def _check_record(self, req: Request) -> list[str]:
        body, problems = self._body_problems(req)
        if body.get("status") not in ("granted", "withdrawn", "denied"):
            problems.append(f"unknown status {body.get('status')!r}")
        if not isinstance(body.get("evidence"), dict):
            problems.append("evidence must be an object")
        return problems

    # -- routes (under the state lock) ------------------------------------------------------

    def _unavailable(self) -> Response | None:
        if self._down:
            return _error(503, "consent service unavailable")
        if self._flap is not None and self._flap.random() < self._flap_share:
            return _error(503, "consent service unavailable (flapping)")
        return None

    def _lookup(self, req: Request) -> Response:
        down = self._unavailable()
        if down is not None:
            return down
        purpose = req.body["purpose"]
        results = []
        for subject in map(str, req.body["subjects"]):
            status, version, recorded = self._consents.get((subject, purpose), ("unknown", "", ""))
            result: dict[str, Any] = {"subject": subject, "status": status}
            if version:
                result.update(version=version, recorded_at=recorded)
            results.append(result)
        return Response(200, {"purpose": purpose, "results": results})

    def _record_event(self, req: Request) -> Response:
        down = self._unavailable()
        if down is not None:
            return down
        body = req.body
        subject = str(body["subject"])
        version = self._put(subject, body["purpose"], body["status"])
        self._events.append(dict(body))
        _, _, recorded = self._consents[(subject, body["purpose"])]
        return Response(
            201,
            {
                "subject": subject,
                "status": body["status"],
                "version": version,
                "recorded_at": recorded,
            },
        )

    def _put(self, subject: str, purpose: str, status: str) -> str:
        version = f"v{next(self._versions)}"
        recorded = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        self._consents[(subject, purpose)] = (status, version, recorded)
        return version

    @property
    def events(self) -> list[dict]:
        """The consent events recorded through the API, oldest first."""
        with self._lock:
            return list(self._events)
