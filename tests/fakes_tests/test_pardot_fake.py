"""FakePardot over real HTTP: strict about the business unit header and prospect shapes, and
answering Pardot's codes in the body (66, 122, 184, 150-154) as VENDORS.md §6 gives them."""

from __future__ import annotations

import threading

import pytest
import requests

from tests.fakes.pardot import BUSINESS_UNIT_ID, FakePardot

UPSERT = "/api/v5/objects/prospects/do/upsertLatestByEmail"


@pytest.fixture
def fake():
    with FakePardot() as server:
        yield server


def _token(fake, scopes=("pardot_api", "refresh_token")) -> dict:
    return fake.oauth.store.issue_grant(list(scopes))


def _post(fake, body, *, token=None, unit=BUSINESS_UNIT_ID) -> requests.Response:
    headers = {"Authorization": f"Bearer {token or _token(fake)['access_token']}"}
    if unit is not None:
        headers["Pardot-Business-Unit-Id"] = unit
    return requests.post(fake.url + UPSERT, json=body, headers=headers, timeout=5)


def _body(email="ann@acme.example", **prospect):
    return {"matchEmail": email, "prospect": {"email": email, **prospect}, "fields": ["id"]}


def test_upsert_latest_by_email_creates_once_then_updates_whatever_the_case(fake):
    first = _post(fake, _body(firstName="Ann"))
    again = _post(fake, _body("ANN@acme.example", firstName="Anna"))

    assert first.status_code == again.status_code == 200
    assert first.json()["id"] == again.json()["id"]
    assert fake.create_count("ann@acme.example") == 1
    assert fake.find("ann@acme.example")["firstName"] == "Anna"
    assert fake.violations == []


def test_a_missing_business_unit_header_is_a_violation_and_a_foreign_one_a_400(fake):
    missing = _post(fake, _body(), unit=None)
    foreign = _post(fake, _body(), unit="0Uv000000000009ZZZ")

    assert (missing.status_code, missing.json()["code"]) == (400, 181)
    assert (foreign.status_code, foreign.json()["code"]) == (400, 181)
    assert [v for v in fake.violations if "Pardot-Business-Unit-Id" in v] != []
    assert fake.prospects() == []


def test_unknown_and_read_only_fields_are_refused_and_recorded(fake):
    answer = _post(fake, _body(favouriteColour="blue", id=7))

    assert answer.status_code == 400 and answer.json()["code"] == 153
    assert any("favouriteColour: unknown prospect field" in v for v in fake.violations)
    assert any("prospect.id: read-only" in v for v in fake.violations)


def test_a_required_custom_field_missing_on_create_is_code_151(fake):
    fake.add_custom_field("Home_Base", required=True)

    refused = _post(fake, _body())
    created = _post(fake, _body(Home_Base__c="Leeds"))

    assert (refused.status_code, refused.json()["code"]) == (400, 151)
    assert "Home_Base__c" in refused.json()["message"] and created.status_code == 200


def test_an_expired_token_is_401_code_184_and_a_rotated_refresh_token_dies():
    with FakePardot(rotate=True) as fake:
        _renewal(fake)


def _renewal(fake):
    grant = _token(fake)
    fake.oauth.store.expire_access_tokens()
    form = {
        "grant_type": "refresh_token",
        "refresh_token": grant["refresh_token"],
        "client_id": fake.oauth.client_id,
        "client_secret": fake.oauth.client_secret,
    }

    expired = _post(fake, _body(), token=grant["access_token"])
    renewed = requests.post(fake.url + "/services/oauth2/token", data=form, timeout=5)
    reused = requests.post(fake.url + "/services/oauth2/token", data=form, timeout=5)

    assert (expired.status_code, expired.json()["code"]) == (401, 184)
    assert renewed.status_code == 200 and renewed.json()["refresh_token"] != grant["refresh_token"]
    assert _post(fake, _body(), token=renewed.json()["access_token"]).status_code == 200
    assert (reused.status_code, reused.json()["error"]) == (400, "invalid_grant")


def test_past_the_daily_allowance_every_request_is_code_122_until_the_next_day(fake):
    fake.set_daily_limit(1)

    ok, refused = _post(fake, _body()), _post(fake, _body("bo@acme.example"))
    fake.new_day()

    assert ok.status_code == 200 and refused.json()["code"] == 122
    assert _post(fake, _body("bo@acme.example")).status_code == 200


def test_a_sixth_request_at_once_is_code_66(fake):
    fake.delay_next(5, 1.0)
    token = _token(fake)["access_token"]
    answers: list[requests.Response] = []
    threads = [
        threading.Thread(
            target=lambda i=i: answers.append(_post(fake, _body(f"p{i}@acme.example"), token=token))
        )
        for i in range(5)
    ]
    for thread in threads:
        thread.start()
    fake.wait_for_calls(5, UPSERT)
    sixth = _post(fake, _body("p6@acme.example"), token=token)
    for thread in threads:
        thread.join()

    assert (sixth.status_code, sixth.json()["code"]) == (400, 66)
    assert sorted(a.status_code for a in answers) == [200] * 5
