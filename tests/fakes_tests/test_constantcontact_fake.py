"""FakeConstantContact over real HTTP: OAuth with PKCE and rotating refresh tokens, the JSON
import and its activity, PUT, paging, limits and faults."""

from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from tests.fakes.constantcontact import (
    CLIENT_ID,
    CLIENT_SECRET,
    CUSTOMERS_LIST_ID,
    NEWSLETTER_LIST_ID,
    TOKEN_PATH,
    FakeConstantContact,
)

SCOPES = "account_read contact_data offline_access"
REDIRECT = "https://app.example/oauth/callback"
VERIFIER = "v" * 43
CHALLENGE = base64.urlsafe_b64encode(hashlib.sha256(VERIFIER.encode()).digest()).rstrip(b"=")
BASIC = (CLIENT_ID, CLIENT_SECRET)


@pytest.fixture
def cc() -> Iterator[FakeConstantContact]:
    """Activities finish at once and the 4 requests a second are lifted (tests of them put
    them back)."""
    with FakeConstantContact(job_seconds=0) as fake:
        fake.clear_rate_limit()
        yield fake


@pytest.fixture
def http(cc: FakeConstantContact) -> Iterator[requests.Session]:
    grant = cc.oauth.store.issue_grant(SCOPES.split())
    with requests.Session() as session:
        session.headers["Authorization"] = f"Bearer {grant['access_token']}"
        yield session


def authorize(cc: FakeConstantContact, **overrides: str) -> requests.Response:
    query = {
        "response_type": "code",
        "client_id": CLIENT_ID,
        "redirect_uri": REDIRECT,
        "scope": SCOPES,
        "state": "s1",
        "code_challenge": CHALLENGE.decode(),
        "code_challenge_method": "S256",
        **overrides,
    }
    query = {k: v for k, v in query.items() if v}
    return requests.get(
        f"{cc.url}/oauth2/default/v1/authorize", params=query, allow_redirects=False, timeout=5
    )


def token(cc: FakeConstantContact, auth: Any = BASIC, **form: str) -> requests.Response:
    return requests.post(cc.url + TOKEN_PATH, data=form, auth=auth, timeout=5)


def import_contacts(
    cc: FakeConstantContact, http: requests.Session, *rows: dict, lists=(NEWSLETTER_LIST_ID,)
) -> requests.Response:
    body = {"import_data": list(rows), "list_ids": list(lists)}
    return http.post(f"{cc.base_url}/activities/contacts_json_import", json=body, timeout=10)


def activity(cc: FakeConstantContact, http: requests.Session, answer: requests.Response) -> dict:
    return http.get(f"{cc.base_url}/activities/{answer.json()['activity_id']}", timeout=5).json()


def test_pkce_round_trip_and_rotating_refresh_tokens(cc):
    redirected = authorize(cc)
    assert redirected.status_code == 302
    query = parse_qs(urlsplit(redirected.headers["Location"]).query)
    assert query["state"] == ["s1"]
    answer = token(
        cc,
        grant_type="authorization_code",
        code=query["code"][0],
        redirect_uri=REDIRECT,
        code_verifier=VERIFIER,
    )
    assert answer.status_code == 200
    body = answer.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 86_400
    assert body["scope"] == SCOPES and "id_token" not in body
    summary = requests.get(
        f"{cc.base_url}/account/summary",
        headers={"Authorization": f"Bearer {body['access_token']}"},
        timeout=5,
    )
    assert summary.json()["encoded_account_id"] == "a07e1lq2xjq3"

    first = body["refresh_token"]
    renewed = token(cc, grant_type="refresh_token", refresh_token=first).json()
    assert renewed["refresh_token"] != first and renewed["access_token"] != body["access_token"]
    again = token(cc, grant_type="refresh_token", refresh_token=first)
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
    assert cc.violations == []


def test_authorize_without_pkce_is_refused(cc):
    answer = authorize(cc, code_challenge="", code_challenge_method="")
    assert answer.status_code == 400
    assert any("code_challenge" in v for v in cc.violations)


def test_token_endpoint_takes_the_client_by_basic_only(cc):
    code = parse_qs(urlsplit(authorize(cc).headers["Location"]).query)["code"][0]
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT}
    form |= {"code_verifier": VERIFIER, "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}
    assert token(cc, auth=None, **form).status_code == 400
    problems = " ".join(cc.violations)
    assert "HTTP Basic" in problems and "unexpected 'client_id'" in problems
    wrong = token(cc, auth=(CLIENT_ID, "nope"), grant_type="refresh_token", refresh_token="x")
    assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_client"


def test_wrong_verifier_and_no_offline_access(cc):
    code = parse_qs(urlsplit(authorize(cc).headers["Location"]).query)["code"][0]
    bad = token(
        cc,
        grant_type="authorization_code",
        code=code,
        redirect_uri=REDIRECT,
        code_verifier="w" * 43,
    )
    assert bad.status_code == 400 and bad.json()["error"] == "invalid_grant"
    location = authorize(cc, scope="contact_data").headers["Location"]
    code = parse_qs(urlsplit(location).query)["code"][0]
    body = token(
        cc,
        grant_type="authorization_code",
        code=code,
        redirect_uri=REDIRECT,
        code_verifier=VERIFIER,
    ).json()
    assert "refresh_token" not in body and body["scope"] == "contact_data"
    assert cc.violations == []


def test_revoke_and_expired_tokens_are_401(cc, http):
    grant = cc.oauth.store.issue_grant(SCOPES.split())
    revoked = requests.post(
        f"{cc.url}/oauth2/default/v1/revoke",
        auth=BASIC,
        timeout=5,
        data={"token": grant["refresh_token"], "token_type_hint": "refresh_token"},
    )
    assert revoked.status_code == 200
    refused = token(cc, grant_type="refresh_token", refresh_token=grant["refresh_token"])
    assert refused.status_code == 400
    cc.expire_tokens()
    answer = http.get(f"{cc.base_url}/contact_lists", timeout=5)
    assert answer.status_code == 401
    assert answer.json() == [{"error_key": "unauthorized", "error_message": "Unauthorized"}]
    assert cc.violations == []


def test_lists_and_custom_fields(cc, http):
    cc.add_contact("a@x.io", lists=(NEWSLETTER_LIST_ID,))
    lists = http.get(
        f"{cc.base_url}/contact_lists",
        timeout=5,
        params={"include_count": "true", "include_membership_count": "all"},
    ).json()
    assert lists["lists_count"] == 2
    counts = {item["name"]: item["membership_count"] for item in lists["lists"]}
    assert counts == {"Newsletter": 1, "Customers": 0}
    cc.add_custom_field("tier", "single_select", ("gold", "silver"))
    fields = http.get(f"{cc.base_url}/contact_custom_fields", params={"limit": 100}, timeout=5)
    by_name = {f["name"]: f for f in fields.json()["custom_fields"]}
    assert set(by_name) == {"company_size", "region", "health_score", "tier"}
    assert [c["choice_label"] for c in by_name["region"]["choices"]] == ["EMEA", "AMER", "APAC"]
    assert by_name["company_size"]["type"] == "number"
    assert cc.violations == []


def test_import_is_polled_to_completion_with_the_failed_row_named(http):
    with FakeConstantContact(job_seconds=1.0) as cc:
        cc.clear_rate_limit()
        http.headers["Authorization"] = "Bearer " + cc.oauth.store.issue_grant()["access_token"]
        cc.reject_email("bob@x.io", "Bob was blocked")
        rows = [
            {"email": "Ann@X.io", "first_name": "Ann", "cf:company_size": "50"},
            {"email": "bob@x.io"},
            {"email": "ann@@x"},
        ]
        answer = import_contacts(cc, http, *rows)
        assert answer.status_code == 201
        assert answer.json()["state"] == "initialized"
        assert activity(cc, http, answer)["state"] == "initialized"
        assert cc.contact("ann@x.io") is None  # nothing lands before the activity completes
        time.sleep(0.6)
        assert activity(cc, http, answer)["state"] == "processing"
        time.sleep(0.5)
        done = activity(cc, http, answer)
        assert done["state"] == "completed" and done["percent_done"] == 100
        assert done["status"] == {
            "items_total_count": 3,
            "items_completed_count": 3,
            "list_count": 1,
        }
        assert done["activity_errors"] == [
            {"message": "Row 2: Bob was blocked (bob@x.io)"},
            {"message": "Row 3: ann@@x is not a valid e-mail address (ann@@x)"},
        ]
        ann = cc.contact("ANN@x.io")
        assert ann["permission_to_send"] == "implicit" and ann["cf:company_size"] == "50"
        assert ann["lists"] == [NEWSLETTER_LIST_ID] and cc.create_count("ann@x.io") == 1
        assert cc.contact("bob@x.io") is None and len(cc.imports()) == 1
        assert cc.violations == []


def test_an_unsubscribed_contact_stays_unsubscribed(cc, http):
    cc.add_contact("Ann@x.io", permission="unsubscribed", first_name="Ann")
    import_contacts(
        cc, http, {"email": "ann@X.io", "first_name": "Annie"}, lists=[CUSTOMERS_LIST_ID]
    )
    ann = cc.contact("ann@x.io")
    assert ann["first_name"] == "Annie" and ann["permission_to_send"] == "unsubscribed"
    assert ann["lists"] == [] and cc.create_count("ann@x.io") == 1  # the seed, no second
    assert cc.violations == []


def test_put_nulls_absent_core_properties_and_keeps_subresources(cc, http):
    seeded = cc.add_contact(
        "ann@x.io",
        lists=(NEWSLETTER_LIST_ID,),
        first_name="Ann",
        job_title="CTO",
        region="EMEA",
        home_phone="555",
    )
    url = f"{cc.base_url}/contacts/{seeded['contact_id']}"
    body = {
        "update_source": "Contact",
        "email_address": {
            "address": "ann@x.io",
            "permission_to_send": "unsubscribed",
            "opt_out_reason": None,
        },
        "first_name": "Ann",
    }
    answer = http.put(url, json=body, timeout=5)
    assert answer.status_code == 200
    assert answer.json()["list_memberships"] == [NEWSLETTER_LIST_ID]
    ann = cc.contact("ann@x.io")
    assert ann["job_title"] is None and ann["first_name"] == "Ann"
    assert ann["cf:region"] == "EMEA" and ann["home_phone"] == "555"
    assert ann["permission_to_send"] == "unsubscribed" and ann["opt_out_source"] == "Contact"
    assert cc.contact_record("ann@x.io")["email_address"]["opt_out_date"]
    assert cc.violations == []

    body |= {"update_source": "Account", "list_memberships": []}
    body["email_address"] = {"address": "ann@x.io", "permission_to_send": "implicit"}
    refused = http.put(url, json=body, timeout=5)
    assert refused.status_code == 400 and refused.json()[0]["error_key"] == "bad_request"
    assert cc.contact("ann@x.io")["permission_to_send"] == "unsubscribed"
    assert ["re-opt-in" in v for v in cc.violations] == [True]


def test_get_contact_includes_only_what_is_asked(cc, http):
    seeded = cc.add_contact("ann@x.io", lists=(NEWSLETTER_LIST_ID,), company_size="9")
    url = f"{cc.base_url}/contacts/{seeded['contact_id']}"
    plain = http.get(url, timeout=5).json()
    assert "custom_fields" not in plain and "list_memberships" not in plain
    full = http.get(url, params={"include": "custom_fields,list_memberships"}, timeout=5).json()
    assert full["custom_fields"][0]["value"] == "9"
    assert full["list_memberships"] == [NEWSLETTER_LIST_ID]
    assert http.get(f"{cc.base_url}/contacts/{'0' * 8}-0000", timeout=5).status_code == 404
    assert cc.violations == []


@pytest.mark.parametrize(
    ("row", "problem"),
    [
        ({"email": "a@x.io", "permission_to_send": "explicit"}, "unexpected key"),
        ({"email": "a@x.io", "cf:shoe_size": "9"}, "names no custom field"),
        ({"email": "a@x.io", "cf:company_size": 50}, "is a string"),
        ({"first_name": "Ann"}, "'email'"),
    ],
)
def test_an_off_spec_row_is_refused(cc, http, row, problem):
    answer = import_contacts(cc, http, row)
    assert answer.status_code == 400 and answer.json()[0]["error_key"] == "bad_request"
    assert any(problem in v for v in cc.violations)
    assert cc.activities == []


def test_an_unknown_list_is_refused(cc, http):
    assert import_contacts(cc, http, {"email": "a@x.io"}, lists=["nope"]).status_code == 400
    assert any("is not a contact list" in v for v in cc.violations)


def test_past_40000_contacts_or_4_mb_is_cut_and_recorded():
    with FakeConstantContact(job_seconds=60) as cc, requests.Session() as http:
        cc.clear_rate_limit()
        http.headers["Authorization"] = "Bearer " + cc.oauth.store.issue_grant()["access_token"]
        rows = [{"email": f"u{i}@x.io"} for i in range(40_001)]
        assert import_contacts(cc, http, *rows).status_code == 201
        big = [{"email": f"u{i}@x.io", "first_name": "x" * 4_000} for i in range(1_001)]
        assert import_contacts(cc, http, *big).status_code == 201
        totals = [a["status"]["items_total_count"] for a in cc.activities]
        assert totals == [40_000, 989]  # 989 rows of about 4,040 bytes stay under 4,000,000
        assert len(cc.violations) == 2 and "past 40000" in cc.violations[0]
        assert "4 MB or more" in cc.violations[1]


def test_delete_is_soft_and_an_import_brings_the_contact_back(cc, http):
    ann = cc.add_contact("ann@x.io")
    answer = http.post(
        f"{cc.base_url}/activities/contact_delete",
        timeout=5,
        json={"contact_ids": [ann["contact_id"]]},
    )
    assert answer.status_code == 201 and activity(cc, http, answer)["state"] == "completed"
    assert cc.contact("ann@x.io") is None and cc.contact_record("ann@x.io")["deleted_at"]
    listed = http.get(f"{cc.base_url}/contacts", params={"status": "deleted"}, timeout=5).json()
    assert [c["contact_id"] for c in listed["contacts"]] == [ann["contact_id"]]
    assert http.get(f"{cc.base_url}/contacts", timeout=5).json()["contacts"] == []
    import_contacts(cc, http, {"email": "ann@x.io"})
    assert cc.contact("ann@x.io")["contact_id"] == ann["contact_id"]
    assert cc.violations == []


def test_failed_activities_and_injected_faults_apply_nothing(cc, http):
    cc.fail_activity_next(1, "The import timed out")
    answer = import_contacts(cc, http, {"email": "ann@x.io"})
    status = activity(cc, http, answer)
    assert status["state"] == "failed"
    assert status["activity_errors"] == [{"message": "The import timed out"}]
    cc.fail_next(1, 503)
    fault = import_contacts(cc, http, {"email": "ann@x.io"})
    assert fault.status_code == 503 and fault.json()[0]["error_key"] == "service_unavailable"
    assert cc.contact("ann@x.io") is None and len(cc.activities) == 1


def test_throttled_and_quota_exceeded_are_429_without_retry_after(cc, http):
    cc.set_rate_limit(4, 1.0)
    answers = [http.get(f"{cc.base_url}/account/summary", timeout=5) for _ in range(5)]
    assert [a.status_code for a in answers] == [200] * 4 + [429]
    assert answers[-1].json()[0]["error_key"] == "throttled"
    assert "Retry-After" not in answers[-1].headers
    with FakeConstantContact(daily_limit=2) as daily:
        daily.clear_rate_limit()
        http.headers["Authorization"] = "Bearer " + daily.oauth.store.issue_grant()["access_token"]
        statuses = [http.get(f"{daily.base_url}/account/summary", timeout=5) for _ in range(3)]
        assert [a.status_code for a in statuses] == [200, 200, 429]
        assert statuses[-1].json()[0]["error_key"] == "quota_exceeded"
        assert "Retry-After" not in statuses[-1].headers and daily.daily_refused == 1


def test_the_per_second_limit_is_on_by_default():
    with FakeConstantContact() as cc:
        grant = cc.oauth.store.issue_grant()
        headers = {"Authorization": f"Bearer {grant['access_token']}"}
        statuses = [
            requests.get(f"{cc.base_url}/account/summary", headers=headers, timeout=5).status_code
            for _ in range(5)
        ]
        assert statuses == [200] * 4 + [429]


def test_contacts_paging_and_filters(cc, http, clock):
    for i in range(3):
        cc.add_contact(f"old{i}@x.io")
    clock.advance(60)
    since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(clock.now - 1))
    for i in range(3):
        cc.add_contact(f"New{i}@x.io")
    url, seen = f"{cc.base_url}/contacts?limit=2&include_count=true", []
    while url:
        page = http.get(url, timeout=5).json()
        seen += [c["email_address"]["address"] for c in page["contacts"]]
        assert page["contacts_count"] == 6
        url = cc.url + page["_links"]["next"]["href"] if "_links" in page else ""
    assert sorted(seen) == sorted({*seen}) and len(seen) == 6
    recent = http.get(f"{cc.base_url}/contacts", params={"created_after": since}, timeout=5)
    assert sorted(c["email_address"]["address"] for c in recent.json()["contacts"]) == [
        "new0@x.io",
        "new1@x.io",
        "new2@x.io",
    ]
    one = http.get(f"{cc.base_url}/contacts", params={"email": "NEW1@X.IO"}, timeout=5).json()
    assert [c["email_address"]["address"] for c in one["contacts"]] == ["new1@x.io"]
    assert cc.violations == []
    mixed = http.get(f"{cc.base_url}/contacts", params={"cursor": "x", "limit": 2}, timeout=5)
    assert mixed.status_code == 400 and len(cc.violations) == 2
