"""What a new user reads on the integration admin pages: titles that name the sync, vendor
errors as plain text, no "Object permissions" button that leads nowhere, no "Token: None"."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone
from guardian.shortcuts import assign_perm

from integrations.models import DeadLetter, SyncRun
from mktintegration import roles
from tests.factories import CompanyFactory
from tests.integrations.conftest import make_connection, make_sync, start_and_drive
from tests.page_text import page_text, page_title

RUNS = "/admin/integrations/syncrun/"
LETTERS = "/admin/integrations/deadletter/"
CONNECTIONS = "/admin/integrations/connection/"
SYNCS = "/admin/integrations/sync/"


# --- 1. runs are named after their sync ----------------------------------------------------------


@pytest.mark.django_db
def test_a_sync_run_page_names_its_sync_not_its_id(client_for, hubspot):
    sync = make_sync(make_connection("hubspot", hubspot), name="Customers to HubSpot")
    run = SyncRun.objects.create(sync=sync, trigger="manual", status="succeeded")
    client = client_for(roles.INTEGRATION_ADMIN)

    page = client.get(f"{RUNS}{run.pk}/change/").content.decode()
    history = client.get(f"{RUNS}{run.pk}/history/").content.decode()

    name = f"Run {run.pk} of Customers to HubSpot"
    assert page_title(page).startswith(f"{name} |"), page_title(page)
    breadcrumbs = page_text(re.search(r'<div class="breadcrumbs">(.*?)</div>', page, re.S).group(1))
    assert breadcrumbs.strip().endswith(name), breadcrumbs
    assert name in page_text(history)
    assert f"of {sync.pk} " not in page_title(page) and "(succeeded)" not in page_title(page)


@pytest.mark.django_db
def test_a_dead_letter_page_names_its_sync_not_its_id(client_for, company_sync, hubspot):
    bad = CompanyFactory(name="POISON")
    hubspot.reject_values("companies", "name", "POISON", "Name is not allowed")
    start_and_drive(company_sync)
    letter = DeadLetter.objects.get()

    page = client_for(roles.INTEGRATION_ADMIN).get(f"{LETTERS}{letter.pk}/change/")

    title = page_title(page.content.decode())
    assert title.startswith(f"Record {bad.pk} of {company_sync.name} |"), title


# --- 2. vendor errors read as text, safely escaped ---------------------------------------------


@pytest.mark.django_db
def test_a_dead_letter_shows_the_vendor_error_as_readable_escaped_text(
    client_for, company_sync, hubspot
):
    name = "München <b>GmbH</b>"
    CompanyFactory(name=name)
    refusal = f"{name} was not one of the allowed options: [Köln, Zürich]"
    hubspot.reject_values("companies", "name", name, refusal)
    start_and_drive(company_sync)
    letter = DeadLetter.objects.get()
    client = client_for(roles.INTEGRATION_ADMIN)

    detail = client.get(f"{LETTERS}{letter.pk}/change/").content.decode()
    listing = client.get(LETTERS).content.decode()

    for page in (detail, listing):
        assert "\\u00fc" not in page
        assert "<b>GmbH</b>" not in page  # vendor text never becomes markup
        assert "München &lt;b&gt;GmbH&lt;/b&gt; was not one of the allowed options" in page
    # The error says which property HubSpot refused, and why; the payload what was sent.
    assert f"Property values were not valid: name: {refusal}" in page_text(detail)
    assert '"name": "München <b>GmbH</b>"' in page_text(detail)


# --- 3. the "Object permissions" button ---------------------------------------------------------


@pytest.fixture
def granted_sync(hubspot, user_with_role):
    """A sync a Marketing Manager may change (granted to them), and that manager."""
    sync = make_sync(make_connection("hubspot", hubspot), name="Customers to HubSpot")
    manager = user_with_role(roles.MARKETING_MANAGER)
    for perm in ("view_sync", "change_sync"):
        assign_perm(f"integrations.{perm}", manager, sync)
    return sync, manager


@pytest.mark.django_db
def test_object_permissions_button_is_shown_only_to_who_may_manage_grants(
    client, client_for, granted_sync
):
    sync, manager = granted_sync
    client.force_login(manager)
    assert "Object permissions" not in client.get(f"{SYNCS}{sync.pk}/change/").content.decode()

    admin_client = client_for(roles.INTEGRATION_ADMIN)
    page = admin_client.get(f"{SYNCS}{sync.pk}/change/").content.decode()
    assert "Object permissions" in page
    assert admin_client.get(f"{SYNCS}{sync.pk}/permissions/").status_code == 200


@pytest.mark.django_db
def test_object_permissions_pages_refuse_a_manager_with_a_readable_403(client, granted_sync):
    sync, manager = granted_sync
    client.force_login(manager)

    for url in (
        f"{SYNCS}{sync.pk}/permissions/",
        f"{SYNCS}{sync.pk}/permissions/user-manage/{manager.pk}/",
        f"{SYNCS}{sync.pk}/permissions/group-manage/1/",
    ):
        response = client.get(url)
        assert response.status_code == 403, (url, response.status_code)
        text = page_text(response.content.decode())
        assert "You may not manage who is granted sync “Customers to HubSpot”" in text, text


@pytest.mark.django_db
def test_object_permissions_page_of_an_ungranted_object_answers_404(client, granted_sync, hubspot):
    _, manager = granted_sync
    other = make_sync(make_connection("hubspot", hubspot, name="other"), name="Not yours")
    client.force_login(manager)

    assert client.get(f"{SYNCS}{other.pk}/permissions/").status_code == 404


# --- 4. secrets on a read-only connection page ---------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("role", [roles.AUDITOR, roles.MARKETING_MANAGER])
def test_read_only_connection_page_says_the_token_is_stored_never_its_value(
    client, user_with_role, hubspot_connection, role
):
    user = user_with_role(role)
    assign_perm("integrations.view_connection", user, hubspot_connection)  # managers: a grant
    client.force_login(user)

    page = client.get(f"{CONNECTIONS}{hubspot_connection.pk}/change/").content.decode()

    text = page_text(page)
    assert "Token: stored (hidden)" in text, text
    assert hubspot_connection.get_credentials()["token"] not in page
    assert "None" not in text
    assert "Api key" not in text  # Mailchimp's secret is not declared for HubSpot tokens


@pytest.mark.django_db
def test_read_only_connection_page_says_a_missing_token_is_not_set(client_for, hubspot_connection):
    hubspot_connection.set_credentials({})
    hubspot_connection.save()

    page = client_for(roles.AUDITOR).get(f"{CONNECTIONS}{hubspot_connection.pk}/change/")

    assert "Token: not set" in page_text(page.content.decode())


@pytest.mark.django_db
def test_the_run_list_shows_duration_progress_and_problems_in_a_few_columns(client_for, hubspot):
    sync = make_sync(make_connection("hubspot", hubspot), name="Customers to HubSpot")
    run = SyncRun.objects.create(
        sync=sync,
        trigger="manual",
        status="partial",
        planned=3_000,
        created=2_000,
        updated=100,
        dead_lettered=2_852,
        invalid=12,
        batches_total=30,
        batches_done=30,
    )
    started = timezone.now() - timedelta(minutes=3, seconds=20)
    SyncRun.objects.filter(pk=run.pk).update(started_at=started, finished_at=timezone.now())

    page = client_for(roles.INTEGRATION_ADMIN).get(RUNS).content.decode()

    text = page_text(page)
    assert "3 min 20 s" in text and "30 of 30 batches" in text
    assert "2,852 dead-lettered, 12 invalid" in text
    head = re.search(r'<table id="result_list">.*?</thead>', page, re.S).group(0)
    headers = re.findall(r'<th scope="col"', head)
    assert len(headers) <= 11, len(headers)  # fits 1366 px: every bucket is on the run's page


@pytest.mark.django_db
def test_a_run_page_says_why_records_were_not_sent_grouped_with_the_mapping_to_fix(
    client_for, hubspot
):
    CompanyFactory.create_batch(3, city="Berlin")
    CompanyFactory.create_batch(2, city="Paris")
    sync = make_sync(
        make_connection("hubspot", hubspot),
        name="Customers to HubSpot",
        mappings=[("name", "name"), ("city", "numberofemployees")],
    )
    run = start_and_drive(sync)
    assert run.invalid == 5, run.counts()

    page = client_for(roles.INTEGRATION_ADMIN).get(f"{RUNS}{run.pk}/change/").content.decode()

    text = page_text(page)
    times = "\N{MULTIPLICATION SIGN}"
    reason = re.search(rf"5 {times} numberofemployees: '(Berlin|Paris)' is not a number", text)
    assert reason, text[:2000]
    assert "is not a number — mapping city → numberofemployees" in text
    assert f'href="/admin/integrations/sync/{sync.pk}/change/#mappings-group"' in page


@pytest.mark.django_db
def test_preview_and_run_now_are_buttons_on_the_sync_page_for_who_may_use_them(
    client, client_for, hubspot, user_with_role
):
    sync = make_sync(make_connection("hubspot", hubspot), name="Customers to HubSpot")
    CompanyFactory.create_batch(2)
    admin_client = client_for(roles.INTEGRATION_ADMIN)

    page = admin_client.get(f"{SYNCS}{sync.pk}/change/").content.decode()
    assert ">Preview</button>" in page and ">Run now</button>" in page
    queued = admin_client.post(
        SYNCS, {"action": "run_now", "_selected_action": [sync.pk]}, follow=True
    ).content.decode()
    run = SyncRun.objects.get(sync=sync)
    assert f'<a href="{RUNS}{run.pk}/change/">run {run.pk}</a> queued.' in queued

    viewer = user_with_role(roles.MARKETING_MANAGER)
    assign_perm("integrations.view_sync", viewer, sync)
    client.force_login(viewer)
    seen = client.get(f"{SYNCS}{sync.pk}/change/").content.decode()
    assert "Customers to HubSpot" in seen
    assert ">Preview</button>" not in seen and ">Run now</button>" not in seen
