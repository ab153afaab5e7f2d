"""Browsing personal data in the admin (contacts, their activity, consent records) writes one
access-log row per page view; search terms are not stored, the ids shown are."""

from urllib.parse import urlencode

import pytest

from audit.models import AccessLog
from mktintegration import roles
from tests.factories import ActivityEventFactory, ConsentRecordFactory, ContactFactory


def _only_row():
    (row,) = AccessLog.objects.all()
    return row


@pytest.mark.django_db
def test_a_contact_list_page_writes_one_row_with_the_ids_shown_and_no_search_term(client_for):
    alice = ContactFactory(email="alice@example.com", region="eu")
    ContactFactory(email="bob@example.com", region="us")
    client = client_for(roles.MARKETING_MANAGER, username="mia")

    page = client.get(
        "/admin/backbone/contact/",
        {"q": "alice@example.com", "region__exact": "eu"},
        REMOTE_ADDR="192.0.2.9",
    )

    assert page.status_code == 200 and "alice@example.com" in page.content.decode()
    row = _only_row()
    assert (row.channel, row.dataset, row.actor, row.client_address) == (
        "admin",
        "backbone:contact",
        "user:mia",
        "192.0.2.9",
    )
    assert (row.rows, row.outcome, row.status_code) == (1, "ok", 200)
    assert row.filters == {"q": "(not recorded: 17 characters)", "region__exact": "eu"}
    assert row.fields == [
        "email",
        "first_name",
        "last_name",
        "title",
        "company",
        "region",
        "updated_at",
    ]
    assert row.detail == f"ids: {alice.pk}"
    assert "alice" not in str(AccessLog.objects.values_list("filters", "detail").get())


@pytest.mark.django_db
def test_opening_a_contact_writes_one_row_and_not_the_list_it_came_from(client_for):
    contact = ContactFactory(email="carol@example.com")
    client = client_for(roles.MARKETING_ANALYST)
    came_from = urlencode({"_changelist_filters": urlencode({"q": "carol@example.com"})})

    page = client.get(f"/admin/backbone/contact/{contact.pk}/change/?{came_from}")

    assert page.status_code == 200
    row = _only_row()
    assert (row.dataset, row.rows, row.outcome, row.detail) == (
        "backbone:contact",
        1,
        "ok",
        f"ids: {contact.pk}",
    )
    assert "email" in row.fields
    assert row.filters == {}


@pytest.mark.django_db
def test_consent_records_refused_to_an_analyst_are_logged_denied(client_for):
    record = ConsentRecordFactory()
    client = client_for(roles.MARKETING_ANALYST, username="ana")

    listing = client.get("/admin/backbone/consentrecord/")
    one = client.get(f"/admin/backbone/consentrecord/{record.pk}/change/")

    assert (listing.status_code, one.status_code) == (403, 403)
    rows = list(AccessLog.objects.order_by("id"))
    assert [(r.dataset, r.outcome, r.status_code, r.actor, r.rows) for r in rows] == [
        ("backbone:consentrecord", "denied", 403, "user:ana", 0),
        ("backbone:consentrecord", "denied", 403, "user:ana", 0),
    ]
    assert rows[1].detail == f"ids: {record.pk}"


@pytest.mark.django_db
def test_consent_and_activity_pages_are_logged_for_the_roles_that_may_read_them(client_for):
    records = [*ConsentRecordFactory.create_batch(2), ConsentRecordFactory(purpose="newsletter")]
    ActivityEventFactory(contact=records[0].contact)
    client = client_for(roles.MARKETING_MANAGER)

    client.get("/admin/backbone/consentrecord/", {"purpose__exact": "newsletter"})
    client.get("/admin/backbone/activityevent/")

    consent, activity = AccessLog.objects.order_by("id")
    assert (consent.dataset, consent.rows, consent.filters) == (
        "backbone:consentrecord",
        1,
        {"purpose__exact": "newsletter"},
    )
    assert consent.detail == f"ids: {records[2].pk}"
    assert (activity.dataset, activity.rows) == ("backbone:activityevent", 1)


@pytest.mark.django_db
def test_company_pages_hold_no_personal_data_and_are_not_logged(client_for):
    ContactFactory()
    client_for(roles.MARKETING_ANALYST).get("/admin/backbone/company/")

    assert not AccessLog.objects.exists()
