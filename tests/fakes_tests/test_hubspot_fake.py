"""FakeHubSpot over real HTTP: upserts, unique keys, 207s, limits, auth, rate limits, faults."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from tests.fakes.hubspot import FakeHubSpot

UPSERT = "/crm/v3/objects/companies/batch/upsert"
READ = "/crm/v3/objects/companies/batch/read"
ARCHIVE = "/crm/v3/objects/companies/batch/archive"


@pytest.fixture
def hubspot() -> Iterator[FakeHubSpot]:
    with FakeHubSpot() as fake:
        yield fake


@pytest.fixture
def session(hubspot: FakeHubSpot) -> Iterator[requests.Session]:
    with requests.Session() as http:
        http.headers["Authorization"] = f"Bearer {hubspot.token}"
        yield http


def company(external_id: str, **properties: str) -> dict[str, Any]:
    return {"idProperty": "external_id", "id": external_id, "properties": properties}


def upsert(hubspot: FakeHubSpot, session: requests.Session, *inputs: dict) -> requests.Response:
    return session.post(hubspot.url + UPSERT, json={"inputs": list(inputs)}, timeout=5)


def test_upsert_creates_then_updates(hubspot, session):
    first = upsert(hubspot, session, company("C-1", name="Acme", numberofemployees="10"))
    assert first.status_code == 200
    body = first.json()
    assert body["status"] == "COMPLETE"
    assert set(body) == {"status", "results", "startedAt", "completedAt"}
    [created] = body["results"]
    assert created["new"] is True
    assert created["archived"] is False
    assert created["properties"]["name"] == "Acme"
    assert created["properties"]["external_id"] == "C-1"
    assert {"id", "properties", "createdAt", "updatedAt"} <= set(created)

    second = upsert(hubspot, session, company("C-1", name="Acme Corp"))
    [updated] = second.json()["results"]
    assert updated["new"] is False
    assert updated["id"] == created["id"]
    assert updated["properties"]["name"] == "Acme Corp"
    assert updated["properties"]["numberofemployees"] == "10"  # untouched values stay

    assert hubspot.create_count("companies", "external_id", "C-1") == 1
    [stored] = hubspot.objects("companies")
    assert stored["created_count"] == 1
    assert stored["properties"]["name"] == "Acme Corp"
    assert hubspot.violations == []


def test_contacts_upsert_by_email_matches_case_insensitively(hubspot, session):
    url = hubspot.url + "/crm/v3/objects/contacts/batch/upsert"
    item = {"idProperty": "email", "id": "Ann@X.com", "properties": {"firstname": "Ann"}}
    assert session.post(url, json={"inputs": [item]}).json()["results"][0]["new"] is True
    item = {"idProperty": "email", "id": "ann@x.com", "properties": {"lastname": "Lee"}}
    assert session.post(url, json={"inputs": [item]}).json()["results"][0]["new"] is False
    assert hubspot.create_count("contacts", "email", "ann@x.com") == 1
    assert hubspot.violations == []


def test_upsert_by_non_unique_property_is_rejected(hubspot, session):
    item = {"idProperty": "domain", "id": "acme.com", "properties": {"name": "Acme"}}
    response = upsert(hubspot, session, item)
    assert response.status_code == 400
    body = response.json()
    assert body["status"] == "error"
    assert body["category"] == "VALIDATION_ERROR"
    assert "Unable to perform update/upsert by non-unique domain property" in body["message"]
    assert hubspot.objects("companies") == []
    [violation] = hubspot.violations
    assert "non-unique domain" in violation


def test_custom_unique_property_can_be_used_as_id_property(hubspot, session):
    hubspot.add_property("companies", "erp_code", unique=True)
    names = {
        p["name"]: p
        for p in session.get(hubspot.url + "/crm/v3/properties/companies").json()["results"]
    }
    assert names["erp_code"]["hasUniqueValue"] is True
    item = {"idProperty": "erp_code", "id": "E-9", "properties": {"name": "Erp"}}
    assert upsert(hubspot, session, item).status_code == 200
    assert hubspot.violations == []


def test_unique_value_held_by_another_record_fails_that_record(hubspot, session):
    url = hubspot.url + "/crm/v3/objects/contacts/batch/upsert"
    first = {"idProperty": "external_id", "id": "P-1", "properties": {"email": "a@x.com"}}
    assert session.post(url, json={"inputs": [first]}).status_code == 200
    clash = {"idProperty": "external_id", "id": "P-2", "properties": {"email": "A@x.com"}}
    response = session.post(url, json={"inputs": [{**clash, "objectWriteTraceId": "t2"}]})
    assert response.status_code == 207
    [error] = response.json()["errors"]
    assert error["context"] == {"ids": ["P-2"], "objectWriteTraceId": ["t2"]}
    assert error["errors"][0]["in"] == "email"
    assert len(hubspot.objects("contacts")) == 1


def _traced(*inputs: dict) -> list[dict]:
    return [{**item, "objectWriteTraceId": f"trace-{item['id']}"} for item in inputs]


def _mixed_batch() -> list[dict]:
    return [
        company("C-1", name="Good"),
        company("C-2", name="Unknown prop", favourite_colour="blue"),
        company("C-3", name="Poisoned", country="Atlantis"),
        company("C-4", lifecyclestage="Customer"),  # the label, not the internal value [H26]
    ]


def test_without_trace_ids_one_bad_input_fails_the_whole_batch(hubspot, session):
    hubspot.reject_values("companies", "country", "Atlantis", "Atlantis is not a country")

    response = upsert(hubspot, session, *_mixed_batch())

    assert response.status_code == 400
    body = response.json()
    assert body["category"] == "VALIDATION_ERROR"
    assert "C-2" in body["message"] and "C-4" in body["message"]
    assert hubspot.objects("companies") == []  # not even the good input was applied


def test_partial_failure_is_207_with_per_record_errors(hubspot, session):
    hubspot.reject_values("companies", "country", "Atlantis", "Atlantis is not a country")
    response = upsert(hubspot, session, *_traced(*_mixed_batch()))
    assert response.status_code == 207
    body = response.json()
    assert body["status"] == "COMPLETE"
    assert [r["properties"]["external_id"] for r in body["results"]] == ["C-1"]
    assert body["results"][0]["objectWriteTraceId"] == "trace-C-1"
    assert body["numErrors"] == 3
    assert [e["context"]["objectWriteTraceId"] for e in body["errors"]] == [
        ["trace-C-2"],
        ["trace-C-3"],
        ["trace-C-4"],
    ]
    by_id = {e["context"]["ids"][0]: e for e in body["errors"]}
    assert set(by_id) == {"C-2", "C-3", "C-4"}
    for error in body["errors"]:
        assert error["status"] == "error"
        assert error["category"] == "VALIDATION_ERROR"
    assert "favourite_colour" in by_id["C-2"]["message"]
    assert by_id["C-2"]["errors"][0]["code"] == "PROPERTY_DOESNT_EXIST"
    assert "country" in by_id["C-3"]["message"]
    assert "Atlantis is not a country" in by_id["C-3"]["message"]
    assert by_id["C-4"]["errors"][0]["code"] == "INVALID_OPTION"
    assert [o["properties"]["external_id"] for o in hubspot.objects("companies")] == ["C-1"]
    assert hubspot.violations == []  # rejected records are data problems, not misuse


def test_batch_over_100_is_a_violation(hubspot, session):
    response = upsert(hubspot, session, *(company(f"C-{i}", name="x") for i in range(101)))
    assert response.status_code == 400
    assert response.json()["category"] == "VALIDATION_ERROR"
    assert hubspot.objects("companies") == []
    [violation] = hubspot.violations
    assert "101 items exceed the vendor maximum of 100" in violation

    hubspot.reset()
    response = upsert(hubspot, session, *(company(f"C-{i}", name="x") for i in range(100)))
    assert response.status_code == 200
    assert hubspot.violations == []


def test_non_string_values_and_extra_keys_are_violations(hubspot, session):
    item = {**company("C-1", name="Acme"), "unexpected": True}
    item["properties"]["numberofemployees"] = 12
    response = upsert(hubspot, session, item)
    assert response.status_code == 400
    problems = hubspot.violations
    assert any("numberofemployees: expected string, got number" in p for p in problems)
    assert any("unexpected key 'unexpected'" in p for p in problems)


def test_unknown_endpoint_and_wrong_content_type_are_violations(hubspot, session):
    assert (
        session.post(hubspot.url + "/crm/v3/objects/deals/batch/upsert", json={}).status_code == 404
    )
    response = session.post(
        hubspot.url + UPSERT, data='{"inputs": []}', headers={"Content-Type": "text/plain"}
    )
    assert response.status_code == 400
    problems = hubspot.violations
    assert "unknown endpoint" in problems[0]
    assert "Content-Type must be application/json" in problems[1]


def test_401_for_wrong_and_missing_token(hubspot, session):
    wrong = requests.post(
        hubspot.url + UPSERT,
        json={"inputs": [company("C-1", name="x")]},
        headers={"Authorization": "Bearer expired"},
        timeout=5,
    )
    assert wrong.status_code == 401
    body = wrong.json()
    assert body["status"] == "error"
    assert body["category"] == "INVALID_AUTHENTICATION"
    assert body["message"].startswith("Authentication credentials not found")
    assert "correlationId" in body
    assert hubspot.violations == []  # a stale token is a legitimate client state

    missing = requests.get(hubspot.url + "/crm/v3/properties/companies", timeout=5)
    assert missing.status_code == 401
    [violation] = hubspot.violations
    assert "missing Authorization header" in violation
    assert hubspot.objects("companies") == []


def test_rate_limit_429_with_headers_and_retry_after(hubspot, session):
    hubspot.set_rate_limit(3, 1.0)
    remaining = []
    for i in range(3):
        response = upsert(hubspot, session, company(f"C-{i}", name="x"))
        assert response.status_code == 200
        assert response.headers["X-HubSpot-RateLimit-Max"] == "3"
        assert response.headers["X-HubSpot-RateLimit-Interval-Milliseconds"] == "1000"
        remaining.append(response.headers["X-HubSpot-RateLimit-Remaining"])
    assert remaining == ["2", "1", "0"]

    limited = upsert(hubspot, session, company("C-over", name="x"))
    assert limited.status_code == 429
    body = limited.json()
    assert body["errorType"] == "RATE_LIMIT"
    assert body["policyName"] == "TEN_SECONDLY_ROLLING"
    assert body["message"] == "You have reached your ten_secondly_rolling limit."
    assert int(limited.headers["Retry-After"]) >= 1
    assert limited.headers["X-HubSpot-RateLimit-Remaining"] == "0"
    assert hubspot.rate_limited_count == 1
    assert hubspot.create_count("companies", "external_id", "C-over") == 0
    assert hubspot.calls(UPSERT)[-1].outcome == "rate_limited"

    time.sleep(int(limited.headers["Retry-After"]))
    assert upsert(hubspot, session, company("C-over", name="x")).status_code == 200
    assert hubspot.violations == []


def test_unlimited_by_default_but_headers_always_sent(hubspot, session):
    for _ in range(5):
        response = session.get(hubspot.url + "/crm/v3/properties/contacts")
        assert response.status_code == 200
    assert response.headers["X-HubSpot-RateLimit-Max"] == "190"
    assert response.headers["X-HubSpot-RateLimit-Remaining"] == "185"
    assert "Retry-After" not in response.headers


def test_batch_read_finds_by_unique_property(hubspot, session):
    upsert(hubspot, session, company("C-1", name="Acme", city="Oslo"))
    body = {
        "idProperty": "external_id",
        "inputs": [{"id": "C-1"}, {"id": "C-404"}],
        "properties": ["name"],
    }
    response = session.post(hubspot.url + READ, json=body)
    assert response.status_code == 207
    data = response.json()
    [found] = data["results"]
    assert found["properties"]["name"] == "Acme"
    assert "city" not in found["properties"]  # only what was asked, plus the defaults
    assert found["properties"]["hs_object_id"] == found["id"]
    [missing] = data["errors"]
    assert missing["category"] == "OBJECT_NOT_FOUND"
    assert missing["context"] == {"ids": ["C-404"]}
    assert hubspot.violations == []


def test_archive_flags_objects_and_frees_the_unique_value(hubspot, session):
    [created] = upsert(hubspot, session, company("C-1", name="Acme")).json()["results"]
    response = session.post(hubspot.url + ARCHIVE, json={"inputs": [{"id": created["id"]}]})
    assert response.status_code == 204
    assert response.content == b""
    [stored] = hubspot.objects("companies")
    assert stored["archived"] is True
    read = {"idProperty": "external_id", "inputs": [{"id": "C-1"}], "properties": []}
    assert session.post(hubspot.url + READ, json=read).json()["results"] == []
    # Upserting the key again creates a second record: create_count shows the duplicate.
    assert upsert(hubspot, session, company("C-1", name="Acme")).json()["results"][0]["new"]
    assert hubspot.create_count("companies", "external_id", "C-1") == 2
    assert hubspot.violations == []


def test_archive_over_100_is_a_violation(hubspot, session):
    inputs = [{"id": str(i)} for i in range(101)]
    assert session.post(hubspot.url + ARCHIVE, json={"inputs": inputs}).status_code == 400
    assert len(hubspot.violations) == 1


def test_properties_list_has_the_seeded_set(hubspot, session):
    response = session.get(hubspot.url + "/crm/v3/properties/companies")
    props = {p["name"]: p for p in response.json()["results"]}
    for name in (
        "name",
        "domain",
        "industry",
        "numberofemployees",
        "annualrevenue",
        "country",
        "city",
        "lifecyclestage",
        "hs_object_id",
        "external_id",
    ):
        assert {"name", "label", "type", "fieldType", "hasUniqueValue"} <= set(props[name])
    assert props["external_id"]["hasUniqueValue"] is True
    assert props["domain"]["hasUniqueValue"] is False
    contacts = session.get(hubspot.url + "/crm/v3/properties/contacts").json()["results"]
    assert {"email", "firstname", "lastname", "jobtitle", "company"} <= {
        p["name"] for p in contacts
    }


def test_fail_next_answers_without_applying(hubspot, session):
    hubspot.fail_next(2, status=503)
    assert (
        session.get(hubspot.url + "/crm/v3/properties/companies").status_code == 200
    )  # reads pass
    assert upsert(hubspot, session, company("C-1", name="x")).status_code == 503
    failed = upsert(hubspot, session, company("C-1", name="x"))
    assert failed.status_code == 503
    assert failed.json()["status"] == "error"
    assert hubspot.objects("companies") == []
    assert upsert(hubspot, session, company("C-1", name="x")).status_code == 200
    assert [c.outcome for c in hubspot.calls(UPSERT)] == ["fault", "fault", "handled"]


def test_drop_next_closes_the_socket_without_applying(hubspot, session):
    hubspot.drop_next(1)
    with pytest.raises(requests.ConnectionError):
        upsert(hubspot, session, company("C-1", name="x"))
    assert hubspot.objects("companies") == []
    assert hubspot.calls(UPSERT)[0].status is None
    assert upsert(hubspot, session, company("C-1", name="x")).status_code == 200


def test_delay_next_times_the_client_out_after_the_write_landed(hubspot, session):
    hubspot.delay_next(1, 1.0)
    with pytest.raises(requests.Timeout):
        session.post(hubspot.url + UPSERT, json={"inputs": [company("C-1", name="x")]}, timeout=0.3)
    # The write landed: a retry is an update, never a second record.
    assert upsert(hubspot, session, company("C-1", name="x")).json()["results"][0]["new"] is False
    assert hubspot.create_count("companies", "external_id", "C-1") == 1


def test_requests_are_recorded_with_the_token_masked(hubspot, session):
    upsert(hubspot, session, company("C-1", name="x"))
    [call] = hubspot.calls(UPSERT, method="POST")
    assert call.header("authorization") == "***"
    assert call.body == {"inputs": [company("C-1", name="x")]}
    assert call.status == 200
    assert call.query == {}
    assert call.applied
    assert call.timestamp <= time.time()


def test_concurrent_upserts_never_duplicate(hubspot):
    keys = [f"C-{i}" for i in range(20)]

    def worker() -> None:
        with requests.Session() as http:
            http.headers["Authorization"] = f"Bearer {hubspot.token}"
            for key in keys:
                inputs = [company(key, name=key)]
                assert http.post(hubspot.url + UPSERT, json={"inputs": inputs}).status_code == 200

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(hubspot.objects("companies")) == 20
    assert all(hubspot.create_count("companies", "external_id", key) == 1 for key in keys)
    assert hubspot.violations == []


def test_delay_before_apply_lands_the_write_late(hubspot, session):
    hubspot.delay_next(1, 0.5, apply_first=False)
    with pytest.raises(requests.Timeout):
        session.post(hubspot.url + UPSERT, json={"inputs": [company("C-1", name="x")]}, timeout=0.1)
    assert hubspot.objects("companies") == []  # not yet
    [call] = hubspot.wait_for_calls(1, UPSERT, timeout=5)
    assert call.applied
    assert call.delay == 0.5
    assert len(hubspot.objects("companies")) == 1


def test_restart_keeps_the_port_and_reset_clears_everything(hubspot, session):
    upsert(hubspot, session, company("C-1", name="x"))
    hubspot.set_rate_limit(1, 60)
    hubspot.fail_next(3)
    url = hubspot.url
    hubspot.stop()
    assert not hubspot.running
    with pytest.raises(requests.ConnectionError):
        session.get(url + "/crm/v3/properties/companies", timeout=2)
    hubspot.start()
    assert hubspot.url == url
    assert len(hubspot.objects("companies")) == 1  # the store survives a restart
    hubspot.reset()
    assert hubspot.objects("companies") == []
    assert hubspot.requests == []
    assert hubspot.pending_faults == 0
    assert upsert(hubspot, session, company("C-2", name="y")).status_code == 200
    assert upsert(hubspot, session, company("C-3", name="z")).status_code == 200


# -- Communication Preferences and webhooks ---------------------------------------------------

UNSUBSCRIBE_ALL = "/communication-preferences/v4/statuses/batch/unsubscribe-all"


def test_unsubscribe_all_answers_a_status_per_address_when_verbose(hubspot, session):
    response = session.post(
        hubspot.url + UNSUBSCRIBE_ALL,
        params={"channel": "EMAIL", "verbose": "true"},
        json={"inputs": ["Ann@Example.com"]},
        timeout=5,
    )

    assert response.status_code == 200
    [result] = response.json()["results"]
    assert result["subscriberIdString"] == "Ann@Example.com"
    assert {s["status"] for s in result["statuses"]} == {"UNSUBSCRIBED"}
    assert hubspot.unsubscribed_from_all("ann@example.com")
    assert hubspot.violations == []


def test_unsubscribe_all_without_verbose_answers_no_results(hubspot, session):
    response = session.post(
        hubspot.url + UNSUBSCRIBE_ALL,
        params={"channel": "EMAIL"},
        json={"inputs": ["a@example.com"]},
        timeout=5,
    )

    assert response.status_code == 200 and response.json()["results"] == []
    assert hubspot.unsubscribed_from_all("a@example.com")


def test_unsubscribe_all_needs_the_email_channel_and_at_most_100_addresses(hubspot, session):
    no_channel = session.post(
        hubspot.url + UNSUBSCRIBE_ALL, json={"inputs": ["a@example.com"]}, timeout=5
    )
    too_many = session.post(
        hubspot.url + UNSUBSCRIBE_ALL,
        params={"channel": "EMAIL"},
        json={"inputs": [f"p{i}@example.com" for i in range(101)]},
        timeout=5,
    )

    assert (no_channel.status_code, too_many.status_code) == (400, 400)
    assert any("channel=EMAIL" in v for v in hubspot.violations)
    assert not hubspot.unsubscribed_from_all("p0@example.com")


def test_signed_webhook_is_signed_as_hubspot_documents():
    import base64
    import hashlib
    import hmac
    import json

    url = "https://mkt.example.com/marketing/integrations/webhooks/hubspot/1"
    events = [FakeHubSpot.webhook_event(7, "hs_email_optout", "true", event_id=1)]

    body, headers = FakeHubSpot.signed_webhook(url, events, secret="s", timestamp_ms=1_700_000)

    assert json.loads(body) == events
    message = b"POST" + url.encode() + body + b"1700000"
    expected = base64.b64encode(hmac.new(b"s", message, hashlib.sha256).digest()).decode()
    assert headers["X-HubSpot-Signature-v3"] == expected
    assert headers["X-HubSpot-Request-Timestamp"] == "1700000"
    assert set(events[0]) >= {"eventId", "portalId", "occurredAt", "subscriptionType", "objectId"}
