"""Every number, date, string and nesting depth that enters has a bound: out of range is a 400
(or a form error) naming the field and the range, never a 500, and a value stored before a
bound existed cannot take a page down."""

from __future__ import annotations

import json

import pytest
from django.db import connection as db_connection

from audit.models import AccessLog, Outcome
from exports.query import encode_cursor
from integrations.models import Connection, Sync
from integrations.operations.status import sync_statuses
from mktintegration import roles
from mktintegration.scheduling import periodic_task_sync
from tests.factories import CompanyFactory
from tests.integrations.conftest import make_connection, make_sync
from tests.operations.test_configure_api import URL as CONFIGURE
from tests.operations.test_configure_api import document

EXPORT = "/marketing/export"


@pytest.fixture
def analyst(api_token):
    _, raw = api_token(
        roles.MARKETING_ANALYST, ["export:clients", "export:metrics", "export:contacts"]
    )
    return {"HTTP_AUTHORIZATION": f"Bearer {raw}"}


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("query", "field", "says"),
    [
        ("clients?limit=9223372036854775808", "limit", "from 1 to 10,000 rows"),
        ("clients?format=csv&limit=9223372036854775808", "limit", "from 1 to"),
        ("clients?limit=0", "limit", "from 1 to 10,000"),
        ("clients?min_health_score=9999999999999999999999999", "min_health_score", "0 to 100"),
        ("metrics?max_health_score=-1", "max_health_score", "from 0 to 100"),
        ("clients?min_health_score=1e30", "min_health_score", "not a whole number"),
        (f"clients?cursor={encode_cursor(10**30)}", "cursor", "not one this API returned"),
        ("clients?cursor=" + "A" * 600, "cursor", "not one this API returned"),
        ("clients?updated_since=2026-02-30", "updated_since", "not a valid date"),
        ("contacts?updated_since=2026-13-01", "updated_since", "not a valid date"),
        (
            "clients?updated_since=0001-01-01T00:00:00%2B01:00",
            "updated_since",
            "between 1900-01-01 and 2999-12-31",
        ),
        ("clients?updated_since=9999-12-31", "updated_since", "between 1900-01-01"),
        ("clients?country=DE%00", "country", "control characters"),
        ("clients?country=" + "D" * 201, "country", "at most 200 characters"),
        ("clients?format=csv&format=json", "format", "give it once"),
        ("clients?limit=1&limit=2", "limit", "give it once"),
    ],
)
def test_an_out_of_range_export_parameter_is_a_400_naming_it(client, analyst, query, field, says):
    CompanyFactory(country="DE")

    response = client.get(f"{EXPORT}/{query}", **analyst)

    assert response.status_code == 400, response.content[:300]
    body = response.json()
    assert field in body, body
    assert says in body[field][0], body
    row = AccessLog.objects.get()
    assert (row.outcome, row.status_code) == (Outcome.INVALID, 400)


@pytest.mark.django_db
def test_a_csv_limit_beyond_the_role_says_so_instead_of_counting_rows(client, analyst):
    CompanyFactory()

    response = client.get(f"{EXPORT}/clients?format=csv&limit=100000000", **analyst)

    assert response.status_code == 400
    message = response.json()["limit"][0]
    assert "from 1 to 1,000,000 rows, the most your role may export" in message
    assert "asked for 100,000,000" in message and "has more than" not in message
    assert AccessLog.objects.get().outcome == Outcome.LIMITED


@pytest.mark.django_db
def test_unknown_names_are_echoed_short(client, analyst):
    response = client.get(f"{EXPORT}/clients?fields=" + "x" * 5000, **analyst)

    assert response.status_code == 400
    assert len(response.json()["fields"][0]) < 400


# --- the configure API ------------------------------------------------------------------


def _errors(response) -> dict[str, str]:
    return {e["path"]: e["message"] for e in response.json()["errors"]}


def _sync_doc(server, **sync_fields):
    doc = document(server)
    doc["syncs"][0].update(sync_fields)
    return doc


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("change", "path", "says"),
    [
        ({"every_minutes": 10**12}, "syncs[0].every_minutes", "from 1 to 525,600 minutes"),
        ({"every_minutes": 2**63, "cron": ""}, "syncs[0].every_minutes", "525,600"),
        ({"lookback_minutes": 1e30}, "syncs[0].lookback_minutes", "from 0 to 10,080"),
        ({"mirror_max_delete_share": 2}, "syncs[0].mirror_max_delete_share", "from 0 to 1"),
        ({"filters": {"country": {"a": 1}}}, "syncs[0].filters", "give text"),
        ({"filters": {"min_health_score": "1e30"}}, "syncs[0].filters", "not a whole number"),
        ({"filters": {"min_health_score": 10**30}}, "syncs[0].filters", "from 0 to 100"),
        ({"filters": {"updated_since": "2026-02-30"}}, "syncs[0].filters", "not a valid date"),
        ({"destination_config": {"a": [[[[[[[[[1]]]]]]]]]}}, "syncs[0].destination_config", "8"),
        (
            {"mappings": [{"template": "{name:>1000000}", "destination_field": "name"}]},
            "syncs[0].mappings[0].template",
            "has a format",
        ),
    ],
)
def test_an_out_of_range_sync_setting_is_refused_by_path(
    api, integration_admin, hubspot, change, path, says
):
    response = api(integration_admin).post(CONFIGURE, _sync_doc(hubspot, **change), format="json")

    assert response.status_code == 400, response.content[:500]
    errors = _errors(response)
    assert path in errors, errors
    assert says in errors[path], errors
    assert not Connection.objects.exists() and not Sync.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("change", "path", "says"),
    [
        ({"rate_limit_requests": 1e30}, "connection.rate_limit_requests", "1 to 1,000,000"),
        ({"rate_limit_requests": 10**12}, "connection.rate_limit_requests", "1 to 1,000,000"),
        ({"rate_limit_seconds": 1e30}, "connection.rate_limit_seconds", "to 86,400 seconds"),
        ({"rate_limit_seconds": "NaN"}, "connection.rate_limit_seconds", "finite"),
        ({"credentials": {"token": "x" * 5000}}, "connection.credentials.token", "4000"),
    ],
)
def test_an_out_of_range_connection_setting_is_refused_by_path(
    api, integration_admin, hubspot, change, path, says
):
    doc = document(hubspot)
    doc["connection"].update(change)

    response = api(integration_admin).post(CONFIGURE, doc, format="json")

    assert response.status_code == 400, response.content[:500]
    errors = _errors(response)
    assert path in errors and says in errors[path], errors
    assert not Connection.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "body",
    [
        '{"connection": {"name": "x", "vendor": "hubspot", "config": '
        + "[" * 100_000
        + "]" * 100_000
        + "}}",
        '{"connection": {"name": "x", "vendor": "hubspot", "rate_limit_seconds": NaN}}',
        '{"connection": {"name": "x", "vendor": "hubspot", "rate_limit_seconds": Infinity}}',
    ],
    ids=["100k-deep", "NaN", "Infinity"],
)
def test_a_body_nested_too_deep_or_with_non_json_numbers_is_a_400(api, integration_admin, body):
    response = api(integration_admin).post(CONFIGURE, body, content_type="application/json")

    assert response.status_code == 400
    assert "JSON parse error" in json.dumps(response.json())
    assert not Connection.objects.exists()


# --- the admin's forms --------------------------------------------------------------------


@pytest.mark.django_db
def test_the_sync_form_refuses_an_interval_beyond_a_year(client_for, hubspot):
    connection = make_connection("hubspot", hubspot)
    sync = make_sync(connection, every_minutes=60)
    client = client_for(roles.INTEGRATION_ADMIN)
    page = client.get(f"/admin/integrations/sync/{sync.pk}/change/")
    form = page.context["adminform"].form
    data = {
        name: ("" if value is None else value)
        for name, value in {**form.initial, "connection": connection.pk}.items()
        if name in form.fields
    }
    data.update(
        {
            "filters": json.dumps(sync.filters),
            "destination_config": json.dumps(sync.destination_config),
            "every_minutes": str(10**12),
            "mappings-TOTAL_FORMS": "0",
            "mappings-INITIAL_FORMS": "0",
        }
    )
    data = {k: v for k, v in data.items() if v is not False}

    response = client.post(f"/admin/integrations/sync/{sync.pk}/change/", data)

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert "from 1 to 525,600 minutes" in str(errors["every_minutes"])
    sync.refresh_from_db()
    assert sync.every_minutes == 60


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("depth", "says"), [(10_000, "Nested too deeply"), (20, "Nested 20 levels deep; at most 8")]
)
def test_the_connection_form_refuses_json_nested_too_deep(client_for, depth, says):
    client = client_for(roles.INTEGRATION_ADMIN)

    response = client.post(
        "/admin/integrations/connection/add/",
        {
            "name": "Deep",
            "vendor": "hubspot",
            "auth_kind": "private_app_token",
            "token": "t",
            "config": "[" * depth + "]" * depth,
            "allowed_regions": "[]",
        },
    )

    assert response.status_code == 200
    assert says in str(response.context["adminform"].form.errors["config"])
    assert not Connection.objects.exists()


# --- values stored before the bounds ------------------------------------------------------


def _too_big() -> int:
    # Beyond the calendar on SQLite (64-bit integers); PostgreSQL's integer column stops at
    # 2**31 - 1, which is still far beyond the bound.
    return 10**12 if db_connection.vendor == "sqlite" else 2**31 - 1


@pytest.mark.django_db
def test_a_stored_interval_out_of_range_fails_its_sync_not_the_status_page(
    client_for, hubspot, api, integration_admin
):
    connection = make_connection("hubspot", hubspot)
    bad = make_sync(connection, name="Broken schedule", every_minutes=60)
    make_sync(connection, name="Fine schedule", every_minutes=60)
    Sync.objects.filter(pk=bad.pk).update(every_minutes=_too_big())
    periodic_task_sync(
        name=bad.periodic_task_name,
        task="integrations.run_schedule",
        kwargs={"sync_id": bad.pk},
        every_minutes=_too_big(),
    )

    response = api(integration_admin).get("/marketing/integrations/status")
    dashboard = client_for(roles.MARKETING_MANAGER).get("/admin/operations/dashboard/")

    assert response.status_code == 200, response.content[:300]
    syncs = {s["name"]: s for s in response.json()["syncs"]}
    assert syncs["Broken schedule"]["state"] == "failing"
    assert "every_minutes is out of range" in syncs["Broken schedule"]["reasons"][0]
    assert syncs["Fine schedule"]["state"] != "failing"
    assert dashboard.status_code == 200
    statuses = {s.name: s for s in sync_statuses(Sync.objects.all())}
    assert statuses["Broken schedule"].next_run_at is None


@pytest.mark.django_db
def test_a_stored_filter_out_of_range_is_a_preview_message_not_a_500(client_for, hubspot):
    connection = make_connection("hubspot", hubspot)
    sync = make_sync(connection, name="Odd filter")
    Sync.objects.filter(pk=sync.pk).update(filters={"min_health_score": 1e30})
    client = client_for(roles.INTEGRATION_ADMIN)

    response = client.post(
        "/admin/integrations/sync/",
        {"action": "preview", "_selected_action": [sync.pk]},
        follow=True,
    )

    assert response.status_code == 200
    shown = [str(m) for m in response.context["messages"]]
    assert any("Odd filter: cannot plan" in m and "min_health_score" in m for m in shown), shown


def test_docs_list_every_bound_with_its_values():
    """docs/security.md's table names every bound in mktintegration/bounds.py, with its range."""
    from pathlib import Path

    from mktintegration import bounds

    text = (Path(__file__).resolve().parents[2] / "docs" / "security.md").read_text()
    section = text.split("## Input bounds", 1)[1].split("\n## ", 1)[0]
    rows = {
        line.split("|")[1].strip().strip("`"): line.split("|")[2]
        for line in section.splitlines()
        if line.startswith("| `")
    }
    for name, value in vars(bounds).items():
        if not name.isupper() or not isinstance(value, bounds.Range | int):
            continue
        assert name in rows, f"{name} is not in docs/security.md's bounds table"
        if isinstance(value, bounds.Range) and "^" not in rows[name]:
            assert bounds._number(value.maximum) in rows[name], (name, rows[name])
        elif isinstance(value, int):
            assert f"{value:,}" in rows[name], (name, rows[name])
    assert "1900-01-01 to 2999-12-31" in rows["EARLIEST`, `LATEST"]


@pytest.mark.django_db
def test_the_export_schedule_form_refuses_filters_nested_too_deep(client_for):
    client = client_for(roles.INTEGRATION_ADMIN)

    response = client.post(
        "/admin/exports/exportschedule/add/",
        {"name": "Deep", "dataset": "clients", "filters": "[" * 10_000 + "]" * 10_000},
    )

    assert response.status_code == 200
    assert "Nested too deeply" in str(response.context["adminform"].form.errors["filters"])
