"""The consent evidence of each send in the admin: on the ledger entry page, and as the
auditor's list and CSV download (access-logged, no personal data)."""

import csv
import io

import pytest

from audit.models import AccessLog
from integrations.models import LedgerEntry
from mktintegration import roles
from tests.factories import ConsentRecordFactory, ContactFactory
from tests.integrations.conftest import make_sync, start_and_drive

EVIDENCE = "/admin/integrations/consentevidence/"


@pytest.fixture
def sent(hubspot_connection):
    """Two contacts sent by a consent-gated sync (local table) and one suppressed."""
    sync = make_sync(
        hubspot_connection,
        name="Contacts to HubSpot",
        dataset="contacts",
        obj="contacts",
        mappings=[("first_name", "firstname")],
        match=("email", "email"),
        consent_purpose="email_marketing",
    )
    contacts = ContactFactory.create_batch(3)
    grants = [ConsentRecordFactory(contact=c, status="granted") for c in contacts[:2]]
    run = start_and_drive(sync)
    assert run.created == 2
    return sync, contacts, grants


def _csv(response) -> list[dict]:
    body = b"".join(response.streaming_content).decode()
    return list(csv.DictReader(io.StringIO(body, newline="")))


@pytest.mark.django_db
def test_the_ledger_entry_page_names_the_consent_record_that_allowed_the_send(client_for, sent):
    sync, contacts, grants = sent
    entry = LedgerEntry.objects.get(sync=sync, record_key=str(contacts[0].pk))

    page = client_for(roles.INTEGRATION_ADMIN).get(
        f"/admin/integrations/ledgerentry/{entry.pk}/change/"
    )

    text = page.content.decode()
    assert page.status_code == 200
    assert "Consent evidence of the latest send" in text
    assert f'/admin/backbone/consentrecord/{grants[0].pk}/change/">consent record' in text
    assert "the backbone&#x27;s consent table" in text


@pytest.mark.django_db
def test_an_auditor_downloads_which_consent_allowed_each_send_without_personal_data(
    client_for, sent
):
    _, contacts, grants = sent
    auditor = client_for(roles.AUDITOR, username="audrey")

    listing = auditor.get(EVIDENCE)
    rows = _csv(auditor.get(f"{EVIDENCE}download/"))

    assert listing.status_code == 200 and "Download CSV" in listing.content.decode()
    by_key = {row["record_key"]: row for row in rows}
    assert set(by_key) == {str(c.pk) for c in contacts[:2]}  # the suppressed one was not sent
    for contact, grant in zip(contacts[:2], grants, strict=True):
        row = by_key[str(contact.pk)]
        assert (row["sync"], row["status"], row["consent_source"]) == (
            "Contacts to HubSpot",
            "synced",
            "local",
        )
        assert row["consent_reference"] == str(grant.pk) and row["consent_checked_at"]
    everything = listing.content.decode() + str(rows)
    assert not any(c.email in everything or c.email.lower() in everything for c in contacts)
    logged = AccessLog.objects.filter(dataset="audit:consentevidence").get()
    assert (logged.outcome, logged.rows, logged.actor) == ("ok", 2, "user:audrey")
    # The ledger itself (payload hashes, match values, vendor messages) stays closed to them.
    assert auditor.get("/admin/integrations/ledgerentry/").status_code == 403


@pytest.mark.django_db
@pytest.mark.parametrize(
    "role", [roles.MARKETING_MANAGER, roles.MARKETING_ANALYST, roles.API_CLIENT]
)
def test_consent_evidence_is_for_auditors_and_integration_admins_only(client_for, role, sent):
    client = client_for(role)

    assert client.get(EVIDENCE).status_code == 403
    assert client.get(f"{EVIDENCE}download/").status_code == 403
