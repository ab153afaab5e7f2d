"""The Marketo connector and emulator held to Marketo's own Swagger (kept byte for byte in
tests/fakes/specs/marketo): every request the connector sends is an operation of it with the
declared parameters and a valid body, and every answer of the emulator, errors included,
has the documented shape. The ``marketo`` fixture applies the same check after every test that
uses the emulator; the control tests show the check catches what it should."""

import json

import pytest

from integrations.services import connection_test, connector_for
from tests.factories import CompanyFactory, ConsentRecordFactory, ContactFactory
from tests.fakes.marketo import FakeMarketo
from tests.fakes.openapi import marketo_spec_problems, marketo_specs
from tests.fakes.wire import RecordedRequest
from tests.integrations.conftest import make_sync, start_and_drive

LEADS = [("first_name", "firstName"), ("last_name", "lastName"), ("company_name", "company")]


def _operations(server) -> set[str]:
    mapi, identity = marketo_specs()
    return {
        (identity if r.path.startswith("/identity/") else mapi).operation(r.method, r.path).name
        for r in server.requests
    }


def _contacts(n):
    contacts = ContactFactory.create_batch(n)
    for contact in contacts:
        ConsentRecordFactory(contact=contact, status="granted")
    return contacts


@pytest.mark.django_db
def test_every_call_the_connector_makes_is_in_marketos_swagger(marketo_connection, marketo):
    connector = connector_for(marketo_connection)
    assert connection_test(connection=marketo_connection)[0]
    connector.list_fields("companies", {})
    connector.lookup("leads", ["a@example.com"], match_field="email", destination_config={})
    connector.lookup("companies", ["T-1"], match_field="externalCompanyId", destination_config={})
    for mode in ("upsert", "create_only", "update_only"):
        _contacts(2)
        sync = make_sync(
            marketo_connection,
            dataset="contacts",
            obj="leads",
            mappings=LEADS,
            match=("email", "email"),
            consent_purpose="email_marketing",
            mode=mode,
        )
        start_and_drive(sync)
    CompanyFactory.create_batch(2)
    start_and_drive(
        make_sync(
            marketo_connection,
            obj="companies",
            mappings=[("name", "company")],
            match=("external_id", "externalCompanyId"),
        )
    )
    marketo.expire_tokens()  # 602 in a 200 body, then a new token
    connector_for(marketo_connection).list_fields("leads", {})

    assert _operations(marketo) == {
        "POST /identity/oauth/token",
        "GET /rest/v1/stats/usage.json",
        "GET /rest/v1/leads/describe2.json",
        "GET /rest/v1/companies/describe.json",
        "GET /rest/v1/leads.json",
        "GET /rest/v1/companies.json",
        "POST /rest/v1/leads.json",
        "POST /rest/v1/companies.json",
    }
    assert any(r.response_body.get("success") is False for r in marketo.requests if r.status)
    assert marketo_spec_problems(marketo.requests) == []
    assert marketo.violations == []


def _recorded(method, path, *, query=None, body=None, status=200, answer=None):
    return RecordedRequest(
        method=method,
        path=path,
        query=query or {},
        headers={},
        body=body,
        status=status,
        timestamp=0.0,
        outcome="handled",
        response_body=answer,
        delay=0.0,
    )


def test_the_check_catches_a_request_the_swagger_does_not_allow():
    bad = [
        # a misspelt property: Marketo would ignore it, and look leads up by email instead
        _recorded(
            "POST", "/rest/v1/leads.json", body={"lookupFeild": "email", "input": [{"a": 1}]}
        ),
        # the body Sync Leads requires is missing
        _recorded("POST", "/rest/v1/leads.json"),
        # an action Sync Companies does not have
        _recorded("POST", "/rest/v1/companies.json", body={"action": "upsert", "input": []}),
        # the token in the query string, and the look-up's required filterType missing
        _recorded("GET", "/rest/v1/leads.json", query={"access_token": "t", "filterValues": "a"}),
        # an identity call without its secret
        _recorded("POST", "/identity/oauth/token", query={"grant_type": "client_credentials"}),
        # an endpoint Marketo does not have
        _recorded("POST", "/rest/v1/leads/upsert.json", body={"input": []}),
    ]

    problems = marketo_spec_problems(bad)

    assert "POST /rest/v1/leads.json request: property $.lookupFeild is not in the spec" in (
        problems
    )
    assert "POST /rest/v1/leads.json: the spec requires a body; none was sent" in problems
    assert any(
        p.startswith("POST /rest/v1/companies.json request: action: 'upsert' is not one of")
        for p in problems
    ), problems
    assert "GET /rest/v1/leads.json: query parameter 'access_token' is not in the spec" in problems
    assert "GET /rest/v1/leads.json: required query parameter 'filterType' missing" in problems
    assert (
        "POST /identity/oauth/token: required query parameter 'client_secret' missing" in problems
    )
    assert "POST /rest/v1/leads/upsert.json: no such operation in the published spec" in problems


def test_the_check_catches_an_answer_off_the_swagger():
    # Marketo's usual error answer leaves out result and warnings; the Swagger requires them.
    short = {"requestId": "1#2", "success": False, "errors": [{"code": 601, "message": "x"}]}

    problems = marketo_spec_problems(
        [_recorded("GET", "/rest/v1/leads/describe2.json", answer=short)]
    )

    assert problems == [
        "GET /rest/v1/leads/describe2.json 200 answer: (body): 'result' is a required property",
        "GET /rest/v1/leads/describe2.json 200 answer: (body): 'warnings' is a required property",
        "GET /rest/v1/leads/describe2.json 200 answer: errors/0/code: 601 is not of type 'string'",
    ]


def test_the_emulators_own_error_answers_are_on_the_swagger():
    import requests

    mapi, _ = marketo_specs()
    with FakeMarketo() as server:
        server.set_daily_limit(2)
        token = requests.post(
            f"{server.url}/identity/oauth/token",
            params={
                "grant_type": "client_credentials",
                "client_id": server.client_id,
                "client_secret": server.client_secret,
            },
            timeout=5,
        ).json()["access_token"]
        bearer = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        requests.get(f"{server.url}/rest/v1/leads/describe2.json", timeout=5)  # no token
        requests.post(  # a token Marketo does not know
            f"{server.url}/rest/v1/leads.json",
            data=json.dumps({"input": []}),
            headers={**bearer, "Authorization": "Bearer nope"},
            timeout=5,
        )
        requests.post(  # a body Marketo refuses
            f"{server.url}/rest/v1/leads.json",
            data=json.dumps({"input": "not a list"}),
            headers=bearer,
            timeout=5,
        )
        for _ in range(2):  # the day's last call (the refused body was one), then 607
            requests.get(f"{server.url}/rest/v1/stats/usage.json", headers=bearer, timeout=5)

    answers = [r for r in server.requests if r.path.startswith("/rest/")]
    assert [(r.response_body["errors"] or [{}])[0].get("code") for r in answers] == [
        "600",
        "601",
        "1003",
        None,
        "607",
    ]
    assert [p for r in answers for p in mapi.response_problems(r)] == []
