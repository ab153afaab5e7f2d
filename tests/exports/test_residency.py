"""Residency applies to exports: a reader (user or token) or a file destination restricted to
regions gets only those regions' records, and the access log counts what was withheld."""

from __future__ import annotations

import csv
import io

import pytest
from django.core.management import CommandError, call_command

from audit.models import AccessLog
from exports.models import RunStatus
from mktintegration import roles
from mktintegration.tokens import token_create
from tests.audit.tampering import sql_behind_the_orm
from tests.factories import CompanyFactory

EXPORT = "/marketing/export/clients"


@pytest.fixture
def regions(db):
    """Companies in three regions, keys interleaved."""
    made = []
    for index in range(9):
        made.append(CompanyFactory(residency_region=("eu", "us", "uk")[index % 3]))
    return made


def _by_region(companies, *allowed):
    return sorted(c.pk for c in companies if c.residency_region in allowed)


@pytest.fixture
def eu_analyst(user_with_role):
    return user_with_role(roles.MARKETING_ANALYST, allowed_regions=["eu"])


@pytest.mark.django_db
@pytest.mark.parametrize("fmt", ["json", "csv", "ndjson"])
def test_a_reader_restricted_to_regions_gets_only_their_records(client, eu_analyst, regions, fmt):
    _, raw = token_create(user=eu_analyst, name="eu", scopes=["export:clients"])

    response = client.get(
        f"{EXPORT}?format={fmt}&fields=id,region", HTTP_AUTHORIZATION=f"Bearer {raw}"
    )

    body = b"".join(response.streaming_content) if response.streaming else response.content
    if fmt == "json":
        ids = [row["id"] for row in response.json()["data"]]
    elif fmt == "csv":
        ids = [int(row[0]) for row in list(csv.reader(io.StringIO(body.decode())))[1:]]
    else:
        ids = [int(line.split(b'"id":')[1].split(b",")[0]) for line in body.splitlines()]
    assert ids == _by_region(regions, "eu")
    log = AccessLog.objects.latest("id")
    assert (log.rows, log.withheld, log.outcome) == (3, 6, "ok")


@pytest.mark.django_db
def test_the_pages_of_a_restricted_read_add_up_to_what_was_withheld(client, eu_analyst, regions):
    client.force_login(eu_analyst)
    url, seen = f"{EXPORT}?fields=id&limit=2", []
    while url:
        page = client.get(url).json()
        seen += [row["id"] for row in page["data"]]
        url = page["next"]

    logs = list(AccessLog.objects.order_by("id"))
    assert seen == _by_region(regions, "eu")
    assert sum(log.withheld for log in logs) == 6
    assert [log.rows for log in logs] == [2, 1]


@pytest.mark.django_db
def test_an_unrestricted_reader_gets_every_region_and_nothing_withheld(
    client, user_with_role, regions
):
    client.force_login(user_with_role(roles.MARKETING_ANALYST))

    data = client.get(f"{EXPORT}?fields=id").json()["data"]

    assert len(data) == 9 and AccessLog.objects.get().withheld == 0


@pytest.mark.django_db
def test_a_file_destination_restricted_to_regions_receives_only_them(
    settings, regions, make_destination, make_schedule, run_schedule
):
    destination = make_destination("local", subdirectory="us-only", allowed_regions=["us"])
    schedule = make_schedule(destination=destination, fields=["id", "region"])

    run = run_schedule(schedule)

    assert run.status == RunStatus.SUCCEEDED, run.error
    data = (settings.MKT_EXPORT_DIR / "us-only" / run.file_name).read_text()
    rows = list(csv.reader(io.StringIO(data)))[1:]
    assert [int(r[0]) for r in rows] == _by_region(regions, "us")
    log = AccessLog.objects.filter(channel="file").latest("id")
    assert (log.rows, log.withheld) == (3, 6)


@pytest.mark.django_db
def test_owner_and_destination_restrictions_both_apply(
    settings, regions, manager, make_destination, make_schedule, run_schedule
):
    manager.allowed_regions = ["eu", "uk"]
    manager.save()
    destination = make_destination("local", subdirectory="uk", allowed_regions=["uk", "us"])
    schedule = make_schedule(destination=destination, fields=["id"], owner=manager)

    run = run_schedule(schedule)

    data = (settings.MKT_EXPORT_DIR / "uk" / run.file_name).read_text()
    assert [int(r[0]) for r in list(csv.reader(io.StringIO(data)))[1:]] == _by_region(regions, "uk")


@pytest.mark.django_db
def test_an_unknown_region_is_refused_where_the_restriction_is_set(client_for):
    client = client_for(roles.INTEGRATION_ADMIN)

    response = client.post(
        "/admin/exports/exportdestination/add/",
        {
            "name": "x",
            "kind": "local",
            "subdirectory": "x",
            "retention_days": 30,
            "port": 22,
            "signature_header": "X-Mkt-Signature",
            "allowed_regions": '["mars"]',
        },
    )

    assert response.status_code == 200
    assert "Unknown region(s) mars" in str(response.context["adminform"].form.errors)


@pytest.mark.django_db
def test_rows_logged_before_the_withheld_count_existed_still_verify(
    client, eu_analyst, regions, capsys
):
    client.force_login(eu_analyst)
    client.get(f"{EXPORT}?fields=id")
    call_command("verify_audit")  # a row with withheld > 0, and rows without it, verify

    row = AccessLog.objects.latest("id")
    table = AccessLog._meta.db_table
    # Hiding what was withheld is tampering.
    sql_behind_the_orm(f"UPDATE {table} SET withheld = 0 WHERE id = %s", [row.pk], table=table)
    with pytest.raises(CommandError, match=f"row {row.pk}"):
        call_command("verify_audit")
