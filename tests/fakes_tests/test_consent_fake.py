"""FakeConsentService over real HTTP: answers per subject, the contract's limits, auth, the
misbehaviours tests ask of it, and its answers held to docs/consent-service.openapi.yaml."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import requests

from tests.fakes.consent import LOOKUP, RECORDS, FakeConsentService


@pytest.fixture
def service() -> Iterator[FakeConsentService]:
    with FakeConsentService() as fake:
        yield fake


@pytest.fixture
def session(service: FakeConsentService) -> Iterator[requests.Session]:
    with requests.Session() as http:
        http.headers["Authorization"] = f"Bearer {service.token}"
        yield http


def lookup(service, session, subjects, purpose="email_marketing"):
    body = {"purpose": purpose, "subjects": subjects}
    return session.post(service.url + LOOKUP, json=body, timeout=5)


def test_answers_each_subject_with_its_status_and_version(service, session):
    version = service.set_consent(7, "email_marketing", "granted")

    answer = lookup(service, session, ["7", "8"])

    assert answer.status_code == 200
    results = {r["subject"]: r for r in answer.json()["results"]}
    assert results["7"]["status"] == "granted" and results["7"]["version"] == version
    assert results["8"] == {"subject": "8", "status": "unknown"}
    assert service.problems() == []


def test_a_recorded_withdrawal_is_in_force_with_a_new_version(service, session):
    first = service.set_consent(7, "newsletter", "granted")
    event = {
        "subject": "7",
        "purpose": "newsletter",
        "status": "withdrawn",
        "channel": "email",
        "source": "mailchimp",
        "evidence": {"event_id": "x"},
    }

    answer = session.post(service.url + RECORDS, json=event, timeout=5)

    assert answer.status_code == 201
    assert answer.json()["status"] == "withdrawn" and answer.json()["version"] != first
    assert service.consent(7, "newsletter") == ("withdrawn", answer.json()["version"])
    assert service.problems() == []


def test_more_subjects_than_the_contract_allows_is_a_400_and_a_violation(service, session):
    answer = lookup(service, session, [str(n) for n in range(1001)])

    assert answer.status_code == 400
    assert any("at most 1000" in v for v in service.violations)


def test_a_missing_or_wrong_token_is_a_401(service):
    assert requests.post(service.url + LOOKUP, json={}, timeout=5).status_code == 401
    wrong = {"Authorization": "Bearer nope"}
    body = {"purpose": "email_marketing", "subjects": ["1"]}
    assert (
        requests.post(service.url + LOOKUP, json=body, headers=wrong, timeout=5).status_code == 401
    )


def test_slow_down_and_flapping_on_demand(service, session):
    service.set_slow(0.3)
    started = time.monotonic()
    assert lookup(service, session, ["1"]).status_code == 200
    assert time.monotonic() - started >= 0.3
    service.set_slow(0)

    service.set_down()
    assert lookup(service, session, ["1"]).status_code == 503
    service.set_down(False)

    service.set_flapping(0.5, seed=3)
    statuses = [lookup(service, session, ["1"]).status_code for _ in range(20)]
    assert {200, 503} == set(statuses)
    service.set_flapping(0.5, seed=3)
    assert [lookup(service, session, ["1"]).status_code for _ in range(20)] == statuses
