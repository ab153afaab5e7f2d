"""What syncs read and show is in the access log: one row per run's plan (channel sync), one
per preview (channel preview, also when refused), one per dead-letter payload viewed."""

import pytest
from guardian.shortcuts import assign_perm

from audit.models import AccessLog
from integrations.models import DeadLetter, FieldMapping, RunStatus
from integrations.services import sync_run_start
from mktintegration import roles
from tests.factories import CompanyFactory
from tests.integrations.conftest import drive, make_sync, start_and_drive

SOURCE_FIELDS = ["name", "domain", "industry", "employees", "country", "external_id"]


def _rows(channel):
    return list(AccessLog.objects.filter(channel=channel).order_by("id"))


@pytest.mark.django_db
def test_a_run_writes_one_sync_row_when_its_plan_finishes(company_sync, user_with_role):
    CompanyFactory.create_batch(3)
    ida = user_with_role(roles.INTEGRATION_ADMIN, username="ida")

    run = start_and_drive(company_sync, user=ida)

    (row,) = _rows("sync")
    assert run.status == RunStatus.SUCCEEDED
    assert (row.actor, row.user_id, row.dataset, row.outcome) == (
        "user:ida",
        ida.pk,
        "clients",
        "ok",
    )
    assert row.rows == 3
    assert set(SOURCE_FIELDS) <= set(row.fields)
    assert (
        row.detail
        == f"sync {company_sync.pk} ({company_sync.name}), manual run {run.pk}: 3 source rows read"
    )


@pytest.mark.django_db
def test_a_scheduled_run_is_read_by_the_system_and_an_unchanged_source_reads_nothing(company_sync):
    CompanyFactory.create_batch(2)
    drive(sync_run_start(sync=company_sync, trigger="schedule"))
    drive(sync_run_start(sync=company_sync, trigger="schedule"))

    first, second = _rows("sync")
    assert (first.actor, first.user_id, first.rows) == ("system", None, 2)
    assert second.rows == 0  # incremental: nothing changed since, nothing read


@pytest.mark.django_db
def test_a_plan_that_fails_writes_an_error_row(company_sync):
    CompanyFactory.create_batch(2)
    FieldMapping.objects.create(
        sync=company_sync, source_field="name", destination_field="closedate", transform="date"
    )

    run = start_and_drive(company_sync)

    (row,) = _rows("sync")
    assert run.status == RunStatus.FAILED
    assert (row.outcome, row.dataset) == ("error", "clients")


def _preview(client, *syncs):
    return client.post(
        "/admin/integrations/sync/",
        {"action": "preview", "_selected_action": [s.pk for s in syncs]},
        REMOTE_ADDR="192.0.2.44",
    )


@pytest.mark.django_db
def test_an_admin_preview_writes_one_row_with_the_records_shown(client_for, company_sync):
    CompanyFactory.create_batch(3)
    client = client_for(roles.INTEGRATION_ADMIN, username="ida")

    response = _preview(client, company_sync)

    assert "<strong>3</strong> records would be sent" in response.content.decode()
    (row,) = _rows("preview")
    assert (row.actor, row.outcome, row.client_address) == ("user:ida", "ok", "192.0.2.44")
    assert (row.dataset, row.rows, row.filters) == ("clients", 3, {})
    assert set(SOURCE_FIELDS) <= set(row.fields)
    assert row.detail.endswith("3 source rows read")
    assert _rows("sync") == []  # a preview is not a run


@pytest.mark.django_db
def test_a_preview_of_a_sync_not_granted_for_previews_is_logged_denied(
    client_for, hubspot_connection, user_with_role
):
    mine, theirs = make_sync(hubspot_connection), make_sync(hubspot_connection)
    CompanyFactory.create_batch(2)
    manager = user_with_role(roles.MARKETING_MANAGER, username="mia")
    for perm in ("view_sync", "preview_sync"):
        assign_perm(f"integrations.{perm}", manager, mine)
    assign_perm("integrations.view_sync", manager, theirs)  # may see it, not preview it
    client = client_for(None)
    client.force_login(manager)

    _preview(client, mine, theirs)

    rows = {row.detail.split(",")[0]: row for row in _rows("preview")}
    assert rows[f"sync {mine.pk} ({mine.name})"].outcome == "ok"
    refused = rows[f"sync {theirs.pk} ({theirs.name})"]
    assert (refused.outcome, refused.status_code, refused.rows) == ("denied", 403, 0)
    assert (refused.actor, refused.client_address) == ("user:mia", "192.0.2.44")


def _dead_letter(company_sync, hubspot):
    CompanyFactory(name="POISON")
    hubspot.reject_values("companies", "name", "POISON", "Name is not allowed")
    start_and_drive(company_sync)
    return DeadLetter.objects.get()


@pytest.mark.django_db
def test_viewing_a_dead_letters_payload_writes_one_row(client_for, company_sync, hubspot):
    letter = _dead_letter(company_sync, hubspot)
    client = client_for(roles.INTEGRATION_ADMIN, username="ida")

    page = client.get(f"/admin/integrations/deadletter/{letter.pk}/change/")
    client.get("/admin/integrations/deadletter/")  # the list shows no payload: not logged

    assert page.status_code == 200
    (row,) = AccessLog.objects.filter(channel="admin")
    assert (row.channel, row.dataset, row.actor, row.rows) == (
        "admin",
        "integrations:deadletter",
        "user:ida",
        1,
    )
    assert row.fields == sorted(letter.payload)
    assert row.detail.startswith(f"ids: {letter.pk}; sync {company_sync.pk} (clients)")


@pytest.mark.django_db
def test_a_dead_letter_refused_to_a_manager_is_logged_denied(client_for, company_sync, hubspot):
    letter = _dead_letter(company_sync, hubspot)
    client = client_for(roles.MARKETING_MANAGER, username="mia")

    page = client.get(f"/admin/integrations/deadletter/{letter.pk}/change/")

    assert page.status_code == 404  # not granted its sync: as if it did not exist
    row = AccessLog.objects.filter(dataset="integrations:deadletter").get()
    assert (row.outcome, row.status_code, row.actor, row.rows) == ("denied", 404, "user:mia", 0)
    assert row.detail == f"ids: {letter.pk}"
