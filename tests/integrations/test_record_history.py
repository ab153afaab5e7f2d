"""Record history: one company (by external id) or contact (by e-mail) across the syncs a user
may see; what each did with it, the vendor's answer, consent and residency, runs and dead
letters. Every search is access-logged, and an e-mail address is never stored."""

import json
from datetime import UTC, datetime

import pytest
from django.contrib.auth import get_user_model
from guardian.shortcuts import assign_perm

from audit.models import AccessLog
from integrations.models import Connection, DeadLetter, LedgerEntry, Sync, SyncBatch, SyncRun
from mktintegration import roles
from tests.factories import CompanyFactory, ContactFactory
from tests.page_text import page_text

PAGE = "/admin/integrations/sync/record-history/"
DATASET = "integrations:record_history"
User = get_user_model()
SENT = datetime(2026, 11, 30, 8, 15, tzinfo=UTC)


def _sync(name, connection, dataset="clients", **kwargs):
    return Sync.objects.create(
        name=name,
        connection=connection,
        dataset=dataset,
        destination_object="contacts" if dataset == "contacts" else "companies",
        match_source_field="email" if dataset == "contacts" else "external_id",
        match_destination_field="email" if dataset == "contacts" else "external_id",
        **kwargs,
    )


@pytest.fixture
def world(db):
    """Two company syncs (one granted to the manager) and a consent-gated contact sync, each
    holding one record; a dead letter and a run in the granted sync."""
    eu = Connection.objects.create(
        name="HubSpot EU", vendor="hubspot", auth_kind="private_app_token", allowed_regions=["eu"]
    )
    company = CompanyFactory(external_id="ACME-1", name="Acme GmbH", residency_region="eu")
    contact = ContactFactory(email="ada@example.com", company=company, region="us")
    granted = _sync("Customers to HubSpot", eu)
    other = _sync("Partners to HubSpot", eu)
    people = _sync("People to HubSpot", eu, dataset="contacts", consent_purpose="email_marketing")
    entry = LedgerEntry.objects.create(
        sync=granted,
        record_key=str(company.pk),
        status="dead",
        payload_hash="ab" * 32,
        destination_id="hs-981",
        attempts=3,
        last_error="Property values were not valid: industry: SOFTWARE is not an option",
        synced_at=SENT,
    )
    LedgerEntry.objects.create(
        sync=other, record_key=str(company.pk), status="synced", destination_id="hs-OTHER"
    )
    person = LedgerEntry.objects.create(
        sync=people,
        record_key=str(contact.pk),
        status="skipped",
        last_error="region us may not be sent to this connection",
        consent_source="local",
        consent_ref="77",
        consent_checked_at=SENT,
    )
    run = SyncRun.objects.create(sync=granted, trigger="manual", status="partial")
    SyncBatch.objects.create(run=run, record_keys=[str(company.pk), "999"])
    unrelated = SyncRun.objects.create(sync=granted, trigger="manual", status="succeeded")
    SyncBatch.objects.create(run=unrelated, record_keys=[f"1{company.pk}"])  # not a prefix match
    letter = DeadLetter.objects.create(
        sync=granted,
        entry=entry,
        run=run,
        record_key=entry.record_key,
        payload={"name": "Acme GmbH", "industry": "SOFTWARE"},
        error="industry: SOFTWARE is not an option",
    )
    contact_letter = DeadLetter.objects.create(
        sync=people,
        entry=person,
        record_key=person.record_key,
        payload={"email": "ada@example.com"},
        error="email refused",
    )
    return {
        "company": company,
        "contact": contact,
        "granted": granted,
        "other": other,
        "people": people,
        "run": run,
        "unrelated": unrelated,
        "letter": letter,
        "contact_letter": contact_letter,
    }


@pytest.fixture
def manager_client(client, user_with_role, world):
    manager = user_with_role(roles.MARKETING_MANAGER, username="manny")
    assign_perm("integrations.view_sync", manager, world["granted"])
    client.force_login(manager)
    return client


def _search(client, q, by=None):
    params = {"q": q} | ({"by": by} if by is not None else {})
    response = client.get(PAGE, params)
    return response, page_text(response.content.decode())


def _logged():
    return list(AccessLog.objects.filter(dataset=DATASET).order_by("id"))


# --- who sees what --------------------------------------------------------------------------


def test_a_manager_sees_only_the_syncs_granted_to_them(manager_client, world):
    response, text = _search(manager_client, "ACME-1")

    assert response.status_code == 200
    assert "Customers to HubSpot" in text
    assert "Partners to HubSpot" not in text and "hs-OTHER" not in text
    assert "People to HubSpot" not in text
    # What was sent, when, and the vendor's answer.
    assert "Dead-lettered (dead), 3 attempts" in text
    assert "2026-11-30 08:15:00 UTC" in text
    assert "hs-981" in text and "abababababab" in text
    assert "industry: SOFTWARE is not an option" in text
    assert "allowed: eu is one of the connection's regions (eu)" in text
    assert "not consent-gated" in text


def test_the_runs_that_carried_the_record_are_linked(manager_client, world):
    response, _ = _search(manager_client, "ACME-1")
    page = response.content.decode()

    assert f"/admin/integrations/syncrun/{world['run'].pk}/change/" in page
    assert f"/admin/integrations/syncrun/{world['unrelated'].pk}/change/" not in page


def test_an_integration_admin_sees_every_sync_holding_the_record(client_for, world):
    _, text = _search(client_for(roles.INTEGRATION_ADMIN), "ACME-1")

    assert "Customers to HubSpot" in text and "Partners to HubSpot" in text


def test_users_who_may_see_no_sync_are_refused_with_a_reason(client_for, world):
    for client in (client_for(roles.MARKETING_ANALYST), client_for(roles.MARKETING_MANAGER)):
        response = client.get(PAGE, {"q": "ACME-1"})
        assert response.status_code == 403
        assert "no sync is granted to you" in page_text(response.content.decode())
    assert [row.outcome for row in _logged()] == ["denied", "denied"]


def test_the_sync_page_and_the_run_page_link_to_record_history(manager_client, world):
    sync_page = manager_client.get(f"/admin/integrations/sync/{world['granted'].pk}/change/")
    run_page = manager_client.get(f"/admin/integrations/syncrun/{world['run'].pk}/change/")

    for response in (sync_page, run_page):
        assert response.status_code == 200
        assert f'href="{PAGE}"' in response.content.decode()
    assert manager_client.get(PAGE).status_code == 200  # the empty form: no search, no log
    assert _logged() == []


# --- dead letters ---------------------------------------------------------------------------


def test_a_manager_sees_a_dead_letter_payload_only_where_they_may_export_the_dataset(
    manager_client, world
):
    _, text = _search(manager_client, "ACME-1")
    assert '"industry": "SOFTWARE"' in text  # the clients dataset: managers export it

    manager = User.objects.get(username="manny")
    assign_perm("integrations.view_sync", manager, world["people"])
    _, text = _search(manager_client, "ada@example.com")
    assert "email refused" in text
    assert "hidden: the contacts dataset's values are shown to who may export it" in text
    assert '"email": "ada@example.com"' not in text


def test_an_auditor_sees_no_dead_letters_at_all(client_for, world):
    response, text = _search(client_for(roles.AUDITOR), "ACME-1")

    assert response.status_code == 200
    assert "Customers to HubSpot" in text  # auditors view every sync's history
    assert "SOFTWARE is not an option" in text  # the ledger's last answer
    assert '"industry"' not in text and "Acme GmbH" not in text.split("History of")[1]
    assert f"/admin/integrations/deadletter/{world['letter'].pk}/" not in response.content.decode()
    assert "Dead letters are not shown" in text


# --- contacts: consent, residency, the access log --------------------------------------------


def test_a_contact_is_found_by_e_mail_with_its_consent_and_residency(client_for, world):
    response, text = _search(client_for(roles.INTEGRATION_ADMIN), "Ada@Example.com")

    assert response.status_code == 200
    assert f"History of contact {world['contact'].pk}, region us" in text
    assert "People to HubSpot" in text
    assert "email_marketing consent: the backbone's consent table — consent record 77" in text
    assert "blocked at the last plan: region us may not be sent to this connection" in text
    assert '"email": "ada@example.com"' in text  # admins may export contacts


def test_an_e_mail_search_is_logged_without_the_address(client_for, world):
    client = client_for(roles.INTEGRATION_ADMIN, username="ida")
    _search(client, "ada@example.com")
    _search(client, "nobody@example.com")

    found, missing = _logged()
    assert found.filters == {"q": "(not recorded: 15 characters)", "by": "email"}
    assert missing.filters == {"q": "(not recorded: 18 characters)", "by": "email"}
    assert (found.actor, found.channel, found.outcome, found.rows) == ("user:ida", "admin", "ok", 1)
    assert f"contact {world['contact'].pk}" in found.detail
    assert f"dead letters: {world['contact_letter'].pk}" in found.detail
    assert "deadletter.payload" in found.fields
    for row in (found, missing):
        stored = json.dumps([row.filters, row.fields, row.detail])
        assert "example.com" not in stored and "ada@" not in stored


def test_an_external_id_search_is_logged_with_the_id(manager_client, world):
    _search(manager_client, "ACME-1")

    (row,) = _logged()
    assert row.filters == {"q": "ACME-1", "by": "external_id"}
    ledger = LedgerEntry.objects.get(sync=world["granted"])
    assert row.detail.startswith(f"company {world['company'].pk}; ledger ids: {ledger.pk}")


# --- nothing found, bad input -----------------------------------------------------------------


def test_a_record_in_no_visible_sync_says_so(manager_client, world):
    CompanyFactory(external_id="LONELY-1")

    _, lonely = _search(manager_client, "LONELY-1")
    _, unknown = _search(manager_client, "NO-SUCH-ID")
    _, nobody = _search(manager_client, "nobody@example.com")

    assert "This record is in no sync you may see" in lonely
    assert "Not in the ledger of: Customers to HubSpot" in lonely
    assert "No company matches that external id." in unknown
    assert "No contact matches that e-mail address." in nobody
    assert [row.outcome for row in _logged()] == ["ok", "ok", "ok"]


@pytest.mark.parametrize(
    ("q", "by", "says"),
    [
        ("x" * 5000, None, "external id: at most 40 characters (got 5,000)"),
        ("a" * 300 + "@example.com", None, "e-mail address: at most 254 characters (got 312)"),
        ("ACME\x01", None, "control characters are not allowed (found U+0001)"),
        ("not-an-address", "email", "Give a contact's e-mail address"),
        ("ACME-1", "phone", "Select a valid choice"),
        ("", None, "This field is required"),
    ],
)
def test_bad_input_is_a_clear_message_and_logged_without_its_value(
    manager_client, world, q, by, says
):
    response, text = _search(manager_client, q, by)

    assert response.status_code == 400
    assert says in text
    (row,) = _logged()
    assert row.outcome == "invalid"
    assert row.filters["q"] == f"(not recorded: {len(q)} characters)"
    assert "ACME" not in json.dumps(row.filters)


def test_the_page_needs_nothing_the_content_security_policy_forbids(client_for, world):
    from tests.mktintegration.test_csp import _inline

    client = client_for(roles.INTEGRATION_ADMIN)
    for params in ({}, {"q": "ACME-1"}, {"q": "ada@example.com"}, {"q": "x" * 50}):
        response = client.get(PAGE, params)
        assert "script-src 'self'" in response["Content-Security-Policy"]
        assert _inline(response.content.decode()).found == [], params


def test_an_auditor_may_not_learn_which_contact_an_address_is(client_for, world):
    response, _ = _search(client_for(roles.AUDITOR, username="aud"), "ada@example.com")

    assert response.status_code == 403
    assert b"needs permission to view contacts" in response.content
    [denied] = _logged()
    assert (denied.outcome, denied.status_code) == ("denied", 403)
    assert denied.filters == {"q": "(not recorded: 15 characters)", "by": "email"}
    assert f"contact {world['contact'].pk}" not in (denied.detail or "")
