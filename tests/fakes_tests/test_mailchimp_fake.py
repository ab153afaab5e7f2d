"""FakeMailchimp over real HTTP: batch subscribe, opt-outs, archive, auth, limits, faults."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from tests.fakes.mailchimp import DEFAULT_LIST, FakeMailchimp

PROBLEM_JSON = "application/problem+json"


@pytest.fixture
def mailchimp() -> Iterator[FakeMailchimp]:
    with FakeMailchimp() as fake:
        yield fake


@pytest.fixture
def session(mailchimp: FakeMailchimp) -> Iterator[requests.Session]:
    with requests.Session() as http:
        http.auth = ("anystring", mailchimp.api_key)
        yield http


def md5(email: str) -> str:
    return hashlib.md5(email.lower().encode(), usedforsecurity=False).hexdigest()


def subscribe(
    mailchimp: FakeMailchimp,
    session: requests.Session,
    *members: dict[str, Any],
    update_existing: bool = True,
    list_id: str = DEFAULT_LIST,
) -> requests.Response:
    body = {"members": list(members), "update_existing": update_existing}
    return session.post(f"{mailchimp.base_url}/lists/{list_id}", json=body, timeout=5)


def test_ping_and_merge_fields(mailchimp, session):
    assert session.get(mailchimp.base_url + "/ping").json() == {
        "health_status": "Everything's Chimpy!"
    }
    mailchimp.add_merge_field(DEFAULT_LIST, "SEGMENT", "dropdown", choices=("smb", "ent"))
    body = session.get(f"{mailchimp.base_url}/lists/{DEFAULT_LIST}/merge-fields").json()
    assert body["list_id"] == DEFAULT_LIST
    assert body["total_items"] == 6
    tags = {f["tag"]: f for f in body["merge_fields"]}
    assert set(tags) == {"FNAME", "LNAME", "PHONE", "COMPANY", "COUNTRY", "SEGMENT"}
    assert tags["PHONE"]["type"] == "phone"
    for field in body["merge_fields"]:
        keys = {"merge_id", "tag", "name", "type", "required", "default_value", "public"}
        assert keys | {"list_id"} <= set(field)
    assert mailchimp.violations == []


def test_unknown_list_is_a_404_problem(mailchimp, session):
    response = session.get(f"{mailchimp.base_url}/lists/nope/merge-fields")
    assert response.status_code == 404
    assert response.headers["Content-Type"].startswith(PROBLEM_JSON)
    assert response.json()["title"] == "Resource Not Found"
    assert response.json()["status"] == 404


def test_batch_subscribe_creates_then_updates(mailchimp, session):
    ann = {"email_address": "Ann@X.com", "status": "subscribed", "merge_fields": {"FNAME": "Ann"}}
    first = subscribe(mailchimp, session, ann)
    assert first.status_code == 200
    body = first.json()
    assert (body["total_created"], body["total_updated"], body["error_count"]) == (1, 0, 0)
    [member] = body["new_members"]
    assert member["id"] == md5("ann@x.com")
    assert member["status"] == "subscribed"
    assert member["merge_fields"]["FNAME"] == "Ann"
    assert {"email_address", "last_changed"} <= set(member)

    again = {"email_address": "ann@x.com", "merge_fields": {"COMPANY": "Acme"}}
    body = subscribe(mailchimp, session, again).json()
    assert (body["total_created"], body["total_updated"]) == (0, 1)
    assert body["updated_members"][0]["merge_fields"] == {
        "FNAME": "Ann",
        "LNAME": "",
        "PHONE": "",
        "COMPANY": "Acme",
        "COUNTRY": "",
    }
    assert mailchimp.create_count(DEFAULT_LIST, "ann@x.com") == 1
    got = session.get(f"{mailchimp.base_url}/lists/{DEFAULT_LIST}/members/{md5('ann@x.com')}")
    assert got.json()["merge_fields"]["COMPANY"] == "Acme"
    assert mailchimp.violations == []


def test_rejected_members_still_get_200(mailchimp, session):
    mailchimp.add_merge_field(DEFAULT_LIST, "REGION", required=True)
    subscribe(
        mailchimp,
        session,
        {"email_address": "old@x.com", "status": "subscribed", "merge_fields": {"REGION": "EU"}},
    )
    response = subscribe(
        mailchimp,
        session,
        {"email_address": "not-an-email", "status": "subscribed"},
        {
            "email_address": "tag@x.com",
            "status": "subscribed",
            "merge_fields": {"REGION": "EU", "SHOE_SIZE": "44"},
        },
        {"email_address": "noregion@x.com", "status": "subscribed"},
        {"email_address": "old@x.com", "status": "subscribed"},
        {"email_address": "ok@x.com", "status": "subscribed", "merge_fields": {"REGION": "US"}},
        update_existing=False,
    )
    assert response.status_code == 200
    body = response.json()
    assert [m["email_address"] for m in body["new_members"]] == ["ok@x.com"]
    assert body["error_count"] == 4
    errors = {e["email_address"]: e for e in body["errors"]}
    assert "looks fake or invalid" in errors["not-an-email"]["error"]
    assert errors["tag@x.com"]["field"] == "SHOE_SIZE"
    assert errors["noregion@x.com"]["field"] == "REGION"
    assert "is already a list member" in errors["old@x.com"]["error"]
    assert errors["old@x.com"]["error_code"] == "ERROR_CONTACT_EXISTS"
    assert mailchimp.violations == []


def test_batch_over_500_is_a_violation(mailchimp, session):
    members = [{"email_address": f"p{i}@x.com", "status": "subscribed"} for i in range(501)]
    response = subscribe(mailchimp, session, *members)
    assert response.status_code == 400
    assert response.headers["Content-Type"].startswith(PROBLEM_JSON)
    assert response.json()["title"] == "Invalid Resource"
    assert mailchimp.members(DEFAULT_LIST) == []
    [violation] = mailchimp.violations
    assert "501 items exceed the vendor maximum of 500" in violation


def test_shape_violations(mailchimp, session):
    subscribe(mailchimp, session, {"email_address": "a@x.com", "status": "archived", "vip": "yes"})
    subscribe(mailchimp, session, {"email_address": "new@x.com"})  # new member, no status
    problems = mailchimp.violations
    assert any("members[0].status: expected one of" in p for p in problems)
    assert any("members[0].vip: expected boolean" in p for p in problems)
    assert any("without status or status_if_new" in p for p in problems)


def test_unsubscribed_member_is_never_resubscribed(mailchimp, session):
    mailchimp.add_member(DEFAULT_LIST, "gone@x.com", "subscribed", {"FNAME": "Gone"})
    mailchimp.set_member_status(DEFAULT_LIST, "gone@x.com", "unsubscribed")

    # Updating fields without a status (or with status_if_new) is fine.
    fine = subscribe(
        mailchimp,
        session,
        {
            "email_address": "gone@x.com",
            "status_if_new": "subscribed",
            "merge_fields": {"LNAME": "Away"},
        },
    ).json()
    assert fine["error_count"] == 0
    assert fine["updated_members"][0]["status"] == "unsubscribed"
    assert mailchimp.violations == []

    bad = subscribe(mailchimp, session, {"email_address": "gone@x.com", "status": "subscribed"})
    assert bad.status_code == 200  # Mailchimp answers 200 and lists the member as an error
    [error] = bad.json()["errors"]
    assert "compliance state" in error["error"]
    assert mailchimp.member(DEFAULT_LIST, "gone@x.com")["status"] == "unsubscribed"
    [violation] = mailchimp.violations
    assert "re-subscribe" in violation

    mailchimp.set_member_status(DEFAULT_LIST, "gone@x.com", "cleaned")
    put = session.put(
        f"{mailchimp.base_url}/lists/{DEFAULT_LIST}/members/{md5('gone@x.com')}",
        json={"email_address": "gone@x.com", "status": "subscribed"},
    )
    assert put.status_code == 400
    assert put.json()["title"] == "Member In Compliance State"
    assert len(mailchimp.violations) == 2


def test_archive_then_re_add(mailchimp, session):
    subscribe(mailchimp, session, {"email_address": "a@x.com", "status": "subscribed"})
    url = f"{mailchimp.base_url}/lists/{DEFAULT_LIST}/members/{md5('a@x.com')}"
    response = session.delete(url)
    assert response.status_code == 204
    assert response.content == b""
    assert session.get(url).json()["status"] == "archived"
    assert (
        session.delete(
            f"{mailchimp.base_url}/lists/{DEFAULT_LIST}/members/{md5('zz@x.com')}"
        ).status_code
        == 404
    )
    # An archived member can be re-added [M7].
    body = subscribe(
        mailchimp,
        session,
        {"email_address": "a@x.com", "status": "subscribed"},
        update_existing=False,
    ).json()
    assert body["total_created"] == 1
    assert mailchimp.create_count(DEFAULT_LIST, "a@x.com") == 2
    assert mailchimp.violations == []


def test_permanent_delete_is_a_violation_and_blocks_re_import(mailchimp, session):
    subscribe(mailchimp, session, {"email_address": "a@x.com", "status": "subscribed"})
    url = f"{mailchimp.base_url}/lists/{DEFAULT_LIST}/members/{md5('a@x.com')}"
    assert session.post(url + "/actions/delete-permanent").status_code == 204
    assert session.get(url).status_code == 404
    body = subscribe(mailchimp, session, {"email_address": "a@x.com", "status": "subscribed"})
    assert "permanently deleted" in body.json()["errors"][0]["error"]
    [violation] = mailchimp.violations
    assert "must only archive" in violation


def test_put_member_upserts_and_checks_the_hash(mailchimp, session):
    url = f"{mailchimp.base_url}/lists/{DEFAULT_LIST}/members/{md5('p@x.com')}"
    body = {
        "email_address": "p@x.com",
        "status_if_new": "subscribed",
        "merge_fields": {"FNAME": "Pat"},
    }
    assert session.put(url, json=body).json()["status"] == "subscribed"
    assert session.put(url, json=body).status_code == 200
    assert mailchimp.create_count(DEFAULT_LIST, "p@x.com") == 1
    assert mailchimp.violations == []
    wrong = f"{mailchimp.base_url}/lists/{DEFAULT_LIST}/members/{md5('other@x.com')}"
    assert session.put(wrong, json=body).status_code == 400
    assert "subscriber hash" in mailchimp.violations[0]


def test_401_problem_json(mailchimp):
    wrong = requests.get(mailchimp.base_url + "/ping", auth=("user", "bad-key-us14"), timeout=5)
    assert wrong.status_code == 401
    assert wrong.headers["Content-Type"].startswith(PROBLEM_JSON)
    body = wrong.json()
    assert body["title"] == "API Key Invalid"
    assert body["status"] == 401
    assert body["detail"].startswith("Your API key may be invalid")
    assert {"type", "instance"} <= set(body)
    assert mailchimp.violations == []

    missing = requests.get(mailchimp.base_url + "/ping", timeout=5)
    assert missing.status_code == 401
    assert "missing Authorization header" in mailchimp.violations[0]


def test_concurrency_cap_gives_429_without_rate_headers(mailchimp, session):
    mailchimp.set_max_concurrency(1)
    mailchimp.delay_next(1, 1.0)
    slow: dict[str, requests.Response] = {}

    def slow_batch() -> None:
        with requests.Session() as http:
            http.auth = ("user", mailchimp.api_key)
            body = {"members": [{"email_address": "s@x.com", "status": "subscribed"}]}
            slow["response"] = http.post(f"{mailchimp.base_url}/lists/{DEFAULT_LIST}", json=body)

    thread = threading.Thread(target=slow_batch)
    thread.start()
    mailchimp.wait_for_calls(1, f"/lists/{DEFAULT_LIST}", "POST")
    limited = session.get(mailchimp.base_url + "/ping")
    thread.join()

    assert limited.status_code == 429
    assert limited.headers["Content-Type"].startswith(PROBLEM_JSON)
    assert limited.json()["title"] == "Too Many Requests"
    assert "simultaneous connections" in limited.json()["detail"]
    assert "Retry-After" not in limited.headers
    assert not any(name.lower().startswith("x-ratelimit") for name in limited.headers)
    assert mailchimp.rate_limited_count == 1
    assert slow["response"].status_code == 200
    assert session.get(mailchimp.base_url + "/ping").status_code == 200


def test_default_cap_is_ten_simultaneous_connections(mailchimp):
    assert mailchimp.default_max_concurrency == 10


def test_sliding_window_rate_limit(mailchimp, session):
    mailchimp.set_rate_limit(2, 5.0)
    statuses = [session.get(mailchimp.base_url + "/ping").status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
    last = mailchimp.calls("/ping")[-1]
    assert last.outcome == "rate_limited"
    assert mailchimp.rate_limited_count == 1


def test_fail_and_drop_do_not_apply(mailchimp, session):
    member = {"email_address": "a@x.com", "status": "subscribed"}
    mailchimp.fail_next(1, status=500)
    response = subscribe(mailchimp, session, member)
    assert response.status_code == 500
    assert response.json()["title"] == "Internal Server Error"
    mailchimp.drop_next(1)
    with pytest.raises(requests.ConnectionError):
        subscribe(mailchimp, session, member)
    assert mailchimp.members(DEFAULT_LIST) == []
    assert subscribe(mailchimp, session, member).json()["total_created"] == 1


# -- campaign reports and webhooks ------------------------------------------------------------

REPORT = "/3.0/reports/camp1/email-activity"


def test_email_activity_lists_the_members_sent_with_their_activity_page_by_page(mailchimp, session):
    mailchimp.add_campaign("camp1", DEFAULT_LIST, ["a@example.com", "b@example.com"])
    mailchimp.add_activity("camp1", "a@example.com", "open", "2026-11-30T10:00:00+00:00")

    first = session.get(mailchimp.url + REPORT, params={"count": 1}, timeout=5).json()
    second = session.get(mailchimp.url + REPORT, params={"count": 1, "offset": 1}, timeout=5)

    assert first["total_items"] == 2 and first["campaign_id"] == "camp1"
    [a] = first["emails"]
    assert (a["email_address"], a["email_id"], a["list_id"]) == (
        "a@example.com",
        md5("a@example.com"),
        DEFAULT_LIST,
    )
    assert [x["action"] for x in a["activity"]] == ["open"]
    assert second.json()["emails"][0]["activity"] == []
    assert mailchimp.violations == []


def test_email_activity_since_lists_only_later_activity(mailchimp, session):
    mailchimp.add_campaign("camp1", DEFAULT_LIST, ["a@example.com", "b@example.com"])
    mailchimp.add_activity("camp1", "a@example.com", "open", "2026-11-30T10:00:00+00:00")
    mailchimp.add_activity("camp1", "b@example.com", "click", "2026-11-30T12:00:00+00:00")

    body = session.get(
        mailchimp.url + REPORT, params={"since": "2026-11-30T11:00:00+00:00"}, timeout=5
    ).json()

    assert [e["email_address"] for e in body["emails"]] == ["b@example.com"]
    assert body["total_items"] == 1


def test_email_activity_of_an_unknown_campaign_is_a_404_and_bad_paging_a_violation(
    mailchimp, session
):
    missing = session.get(mailchimp.url + REPORT, timeout=5)
    mailchimp.add_campaign("camp1", DEFAULT_LIST, [])
    bad = session.get(mailchimp.url + REPORT, params={"count": 5000}, timeout=5)

    assert (missing.status_code, bad.status_code) == (404, 400)
    assert any("count: at most 1000" in v for v in mailchimp.violations)


def test_webhook_form_is_shaped_as_mailchimp_sends_it():
    from datetime import UTC, datetime
    from urllib.parse import parse_qsl

    body = FakeMailchimp.webhook_form(
        "unsubscribe",
        {"email": "a@example.com", "list_id": "l1"},
        fired_at=datetime(2026, 11, 30, 10, 5, 6, tzinfo=UTC),
    )

    assert dict(parse_qsl(body.decode())) == {
        "type": "unsubscribe",
        "fired_at": "2026-11-30 10:05:06",
        "data[email]": "a@example.com",
        "data[list_id]": "l1",
    }
