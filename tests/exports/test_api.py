"""The export API as a client sees it: formats, fields, filters, paging, errors, auth."""

import csv
import io
import json
from datetime import timedelta

import pytest
from django.utils import timezone

from audit.models import AccessLog
from exports.backbone.metrics import refresh_company_metrics
from mktintegration import roles
from mktintegration.models import ApiToken
from tests.factories import NOW, CompanyFactory, ConsentRecordFactory, ContactFactory

ALL_SCOPES = ["export:clients", "export:metrics", "export:contacts"]


@pytest.fixture
def analyst(api_token):
    _, raw = api_token(roles.MARKETING_ANALYST, ALL_SCOPES)
    return {"HTTP_AUTHORIZATION": f"Bearer {raw}"}


@pytest.fixture
def companies(db):
    made = [
        CompanyFactory(name="Plain Co", lifecycle_stage="lead", country="DE"),
        CompanyFactory(
            name='=HYPERLINK("http://evil")',
            lifecycle_stage="customer",
            is_customer=True,
            country="FR",
        ),
        CompanyFactory(
            name="+cmd|' /C calc'!A0", lifecycle_stage="mql", country="US", residency_region="us"
        ),
        CompanyFactory(name="-2+3", lifecycle_stage="lead", country="DE"),
        CompanyFactory(name="@SUM(A1)", lifecycle_stage="lead", country="DE"),
        CompanyFactory(name="\tTabbed", lifecycle_stage="lead", country="DE"),
        CompanyFactory(
            name='Acme, "The" Company', lifecycle_stage="lead", country="DE", city="München"
        ),
        CompanyFactory(
            name="Line\nBreak GmbH",
            lifecycle_stage="lead",
            country="DE",
            updated_at=NOW - timedelta(days=30),
        ),
    ]
    refresh_company_metrics(now=NOW)
    return made


def _csv(response):
    body = b"".join(response.streaming_content)
    return body, list(csv.reader(io.StringIO(body.decode("utf-8"), newline="")))


@pytest.mark.django_db
def test_json_pages_cover_every_row_once_in_key_order(client, analyst, companies):
    seen, url = [], "/marketing/export/clients?limit=3&fields=id,name"
    while url:
        page = client.get(url, **analyst).json()
        assert page["count"] == len(page["data"]) <= 3
        seen += [row["id"] for row in page["data"]]
        url = page["next"]

    assert seen == sorted(c.pk for c in companies)


@pytest.mark.django_db
def test_json_values_have_json_types(client, analyst, companies):
    row = client.get(
        "/marketing/export/clients?fields=id,is_customer,annual_revenue,employees,updated_at,"
        "health_score&lifecycle_stage=customer",
        **analyst,
    ).json()["data"][0]

    assert row == {
        "id": companies[1].pk,
        "is_customer": True,
        "annual_revenue": 5000000,
        "employees": 120,
        "updated_at": "2026-11-29T00:00:00Z",
        "health_score": 10,
    }


@pytest.mark.django_db
def test_csv_neutralises_formulas_and_keeps_text_intact(client, analyst, companies):
    response = client.get("/marketing/export/clients?format=csv&fields=name,city", **analyst)

    assert response["Content-Type"] == "text/csv; charset=utf-8"
    body, rows = _csv(response)
    assert rows[0] == ["name", "city"]
    names = [r[0] for r in rows[1:]]
    assert names == [
        "Plain Co",
        '\'=HYPERLINK("http://evil")',
        "'+cmd|' /C calc'!A0",
        "'-2+3",
        "'@SUM(A1)",
        "'\tTabbed",
        'Acme, "The" Company',
        "Line Break GmbH",  # cells are single-line
    ]
    assert rows[7][1] == "München"
    assert body.endswith(b"\r\n") and body.count(b"\r\n") == len(rows)
    assert b'"Acme, ""The"" Company"' in body  # RFC 4180 quoting


@pytest.mark.django_db
def test_ndjson_lines_are_json_objects(client, analyst, companies):
    response = client.get(
        "/marketing/export/metrics?format=ndjson&fields=company_id,lead_grade,last_activity_at",
        **analyst,
    )
    lines = b"".join(response.streaming_content).decode().splitlines()

    assert response["Content-Type"] == "application/x-ndjson"
    assert len(lines) == len(companies)
    first = json.loads(lines[0])
    assert list(first) == ["company_id", "lead_grade", "last_activity_at"]
    assert first["last_activity_at"] is None


@pytest.mark.django_db
def test_accept_header_picks_the_format(client, analyst, companies):
    response = client.get("/marketing/export/clients", HTTP_ACCEPT="text/csv", **analyst)

    assert response["Content-Type"].startswith("text/csv")


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("query", "expected_names"),
    [
        ("lifecycle_stage=customer,mql", ["=HYPERLINK", "+cmd"]),
        ("country=FR&country=US", ["=HYPERLINK", "+cmd"]),
        ("is_customer=true", ["=HYPERLINK"]),
        ("updated_since=2026-11-01", None),  # everything but the old row
        ("region=us", ["+cmd"]),
    ],
)
def test_filters_select_rows(client, analyst, companies, query, expected_names):
    data = client.get(f"/marketing/export/clients?fields=name&{query}", **analyst).json()["data"]
    names = [row["name"] for row in data]

    if expected_names is None:
        assert "Line\nBreak GmbH" not in names and len(names) == len(companies) - 1
    else:
        assert [n[: len(e)] for n, e in zip(names, expected_names, strict=True)] == expected_names


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("query", "param", "says"),
    [
        ("fields=id,nope", "fields", "unknown field(s): nope. Allowed fields for clients: id,"),
        ("colour=red", "colour", "unknown filter(s): colour. Allowed filters for clients:"),
        ("updated_since=yesterday", "updated_since", "not an ISO 8601 date"),
        ("min_health_score=high", "min_health_score", "not a whole number"),
        ("is_customer=maybe", "is_customer", "not true or false"),
        ("lifecycle_stage=alien", "lifecycle_stage", "allowed: subscriber, lead"),
        ("limit=10001", "limit", "from 1 to 10,000 rows (got 10,001)"),
        ("limit=0", "limit", "from 1 to 10,000 rows (got 0)"),
        ("format=xml", "format", "json, csv, ndjson"),
        ("cursor=!!!", "cursor", "not one this API returned"),
    ],
)
def test_bad_input_is_a_400_naming_the_parameter(client, analyst, companies, query, param, says):
    response = client.get(f"/marketing/export/clients?{query}", **analyst)

    assert response.status_code == 400
    assert says in response.json()[param][0]
    log = AccessLog.objects.latest("id")
    assert (log.outcome, log.status_code) == ("invalid", 400)


@pytest.mark.django_db
def test_missing_credentials_are_a_401(client, companies):
    response = client.get("/marketing/export/clients")

    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert AccessLog.objects.latest("id").actor == "anonymous"


@pytest.mark.django_db
def test_expired_and_revoked_tokens_are_a_401(client, api_token, companies):
    _, expired = api_token(roles.MARKETING_ANALYST, ALL_SCOPES, expires_days=1)
    ApiToken.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    _, revoked = api_token(roles.MARKETING_ANALYST, ALL_SCOPES)
    ApiToken.objects.filter(revoked_at=None, expires_at=None).update(revoked_at=timezone.now())

    for raw, says in ((expired, "expired"), (revoked, "revoked"), ("mkt_abc_wrong", "invalid")):
        response = client.get("/marketing/export/clients", HTTP_AUTHORIZATION=f"Bearer {raw}")
        assert response.status_code == 401
        assert says in response.json()["detail"]


@pytest.mark.django_db
def test_token_without_the_dataset_scope_is_a_403(client, api_token, companies):
    _, raw = api_token(roles.MARKETING_ANALYST, ["export:metrics"])

    response = client.get("/marketing/export/clients", HTTP_AUTHORIZATION=f"Bearer {raw}")

    assert response.status_code == 403
    assert "export:clients" in response.json()["detail"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("role", "dataset", "status"),
    [
        (roles.AUDITOR, "clients", 403),
        (roles.MARKETING_MANAGER, "contacts", 403),
        (roles.MARKETING_MANAGER, "metrics", 200),
        (roles.MARKETING_ANALYST, "contacts", 200),
        (roles.API_CLIENT, "contacts", 403),
    ],
)
def test_dataset_needs_its_permission_with_a_session_too(
    client_for, companies, role, dataset, status
):
    assert client_for(role).get(f"/marketing/export/{dataset}").status_code == status


@pytest.mark.django_db
def test_token_can_do_no_more_than_its_user(client, api_token, companies):
    _, raw = api_token(roles.AUDITOR, ALL_SCOPES)

    response = client.get("/marketing/export/clients", HTTP_AUTHORIZATION=f"Bearer {raw}")

    assert response.status_code == 403


@pytest.mark.django_db
def test_role_row_limit_is_a_400_that_says_how_to_narrow(client, analyst, companies, monkeypatch):
    limited = roles.Role(
        roles.MARKETING_ANALYST, "", roles.ROLES[roles.MARKETING_ANALYST].permissions, 5
    )
    monkeypatch.setitem(roles.ROLES, roles.MARKETING_ANALYST, limited)

    response = client.get("/marketing/export/clients?format=csv", **analyst)
    assert response.status_code == 400
    message = response.json()["limit"][0]
    assert "more than 5 rows" in message and "updated_since" in message
    assert AccessLog.objects.latest("id").outcome == "limited"

    narrowed = client.get("/marketing/export/clients?format=csv&country=FR,US", **analyst)
    assert narrowed.status_code == 200
    assert client.get("/marketing/export/clients?format=csv&limit=6", **analyst).status_code == 400


@pytest.mark.django_db
def test_override_permission_lifts_the_row_limit(client_for, companies, monkeypatch):
    limited = roles.Role(
        roles.MARKETING_ANALYST, "", roles.ROLES[roles.MARKETING_ANALYST].permissions, 1
    )
    monkeypatch.setitem(roles.ROLES, roles.MARKETING_ANALYST, limited)
    client = client_for(roles.INTEGRATION_ADMIN)

    assert client.get("/marketing/export/clients?format=csv").status_code == 200


@pytest.mark.django_db
def test_throttled_token_gets_429_with_retry_after(client, analyst, companies, monkeypatch):
    from exports.api import ExportThrottle

    monkeypatch.setattr(ExportThrottle, "THROTTLE_RATES", {"export": "2/min"})
    statuses = [client.get("/marketing/export/clients", **analyst) for _ in range(3)]

    assert [r.status_code for r in statuses] == [200, 200, 429]
    assert int(statuses[2]["Retry-After"]) > 0
    assert AccessLog.objects.latest("id").outcome == "limited"


@pytest.mark.django_db
def test_every_read_is_access_logged_with_rows_and_bytes(client, analyst, companies):
    response = client.get(
        "/marketing/export/clients?format=csv&fields=id,name&country=DE", **analyst
    )
    body = b"".join(response.streaming_content)

    log = AccessLog.objects.latest("id")
    assert log.outcome == "ok" and log.channel == "api" and log.dataset == "clients"
    assert log.rows == 6 and log.bytes == len(body)
    assert log.fields == ["id", "name"] and log.filters == {"country": ["DE"]}
    assert log.actor.startswith("token:mkt_") and log.client_address == "127.0.0.1"


@pytest.mark.django_db
def test_contacts_export_carries_the_latest_consent(client, analyst):
    contact = ContactFactory()
    ConsentRecordFactory(contact=contact, status="granted", recorded_at=NOW - timedelta(days=9))
    ConsentRecordFactory(contact=contact, status="withdrawn", recorded_at=NOW)
    silent = ContactFactory()

    data = client.get("/marketing/export/contacts?fields=id,email_consent", **analyst).json()

    assert data["data"] == [
        {"id": contact.pk, "email_consent": "withdrawn"},
        {"id": silent.pk, "email_consent": None},
    ]


@pytest.mark.django_db
def test_csv_tells_an_empty_text_from_a_missing_value_on_every_backend(client, analyst):
    CompanyFactory(domain="", annual_revenue=None, name='Comma, Quote " Co')

    response = client.get(
        "/marketing/export/clients?format=csv&fields=domain,annual_revenue,name", **analyst
    )

    body = b"".join(response.streaming_content)
    # As PostgreSQL's COPY writes it: "" is an empty text, nothing at all is no value.
    assert body == b'domain,annual_revenue,name\r\n"",,"Comma, Quote "" Co"\r\n'


# --- demo settings: Django's debug cursor formats every statement with its parameters ------

_FILTERED = [
    ("clients", "country=DE"),
    ("clients", "updated_since=2026-01-01&min_health_score=0&is_customer=false"),
    ("metrics", "lead_grade=A,B&updated_since=2026-11-01"),
    ("contacts", "country=DE&updated_since=2026-01-01"),
]


@pytest.mark.django_db
@pytest.mark.parametrize("fmt", ["json", "csv", "ndjson"])
@pytest.mark.parametrize(("dataset", "query"), _FILTERED)
def test_filtered_exports_answer_with_debug_on(
    client, analyst, companies, settings, fmt, dataset, query
):
    settings.DEBUG = True  # what `make run` sets: every query goes through the debug cursor

    response = client.get(f"/marketing/export/{dataset}?format={fmt}&{query}&limit=5", **analyst)
    body = b"".join(response.streaming_content) if response.streaming else response.content

    assert response.status_code == 200, body[:300]
    assert AccessLog.objects.latest("id").outcome == "ok"
    if fmt == "json":
        page = json.loads(body)
        assert page["next"] is None or "cursor=" in page["next"]
        if page["next"]:  # the cursor's keyset condition goes through the debug cursor too
            assert client.get(page["next"], **analyst).status_code == 200


# --- failed reads are logged with their true status ------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_an_export_that_fails_is_logged_as_a_500(analyst, companies):
    from django.db import connection
    from django.test import Client

    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE backbone_companymetrics RENAME TO backbone_companymetrics_x")
    try:
        response = Client(raise_request_exception=False).get(
            "/marketing/export/clients?fields=id,health_score", **analyst
        )
    finally:
        with connection.cursor() as cursor:
            cursor.execute(
                "ALTER TABLE backbone_companymetrics_x RENAME TO backbone_companymetrics"
            )

    assert response.status_code == 500
    log = AccessLog.objects.latest("id")
    assert (log.outcome, log.status_code, log.dataset) == ("error", 500, "clients")
    assert log.fields == ["id", "health_score"]


@pytest.mark.django_db(transaction=True)  # closing the response closes the connection too
def test_a_stream_the_client_leaves_is_logged_as_aborted(client, analyst, companies):
    response = client.get("/marketing/export/clients?format=csv", **analyst)
    next(iter(response.streaming_content))
    response.close()  # what the server does when the client hangs up

    log = AccessLog.objects.latest("id")
    assert (log.outcome, log.status_code) == ("aborted", 499)


@pytest.mark.django_db
def test_a_stream_that_breaks_midway_is_logged_as_an_error_not_a_200(client, analyst):
    from django.db import connection

    if connection.vendor != "sqlite":
        pytest.skip("PostgreSQL cannot store the invalid UTF-8 that breaks SQLite's fetch")
    for index in range(6_000):  # more than one fetch batch before the bad row
        CompanyFactory(name=f"Company {index}")
    bad = CompanyFactory(name="placeholder")
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE backbone_company SET name = CAST(x'ff' AS TEXT) WHERE id = %s", [bad.pk]
        )

    response = client.get("/marketing/export/clients?format=csv&fields=id,name", **analyst)
    with pytest.raises(Exception):  # noqa: B017 - the driver's own decoding error
        b"".join(response.streaming_content)

    log = AccessLog.objects.latest("id")
    assert (log.outcome, log.status_code) == ("error", 500)
    assert log.rows >= 5_000 and "cut short" in log.detail
