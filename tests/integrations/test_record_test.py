"""Test on one record: a saved sync's payload for one source record, the gate's decision, the
ledger's state and what the destination holds for it today, with nothing written anywhere.
Only who may preview the sync may test it; personal values only for who may export the
dataset; each test is access-logged with the record key, never an e-mail address."""

import pytest
from django.contrib.auth import get_user_model
from guardian.shortcuts import assign_perm

from audit.models import AccessLog
from integrations.models import LedgerEntry, Sync, SyncRun
from mktintegration import roles
from tests.factories import CompanyFactory, ContactFactory
from tests.integrations.conftest import make_connection, make_sync, start_and_drive
from tests.page_text import page_text

User = get_user_model()
VENDOR_WRITES = ("batch/upsert", "batch/archive", "unsubscribe-all")


def _page(sync):
    return f"/admin/integrations/sync/{sync.pk}/test-record/"


def _test(client, sync, q, by=None):
    params = {"q": q} | ({"by": by} if by is not None else {})
    response = client.get(_page(sync), params)
    return response, page_text(response.content.decode())


def _writes(server):
    return [call for call in server.requests if any(w in call.path for w in VENDOR_WRITES)]


def _logged():
    return list(AccessLog.objects.filter(channel="preview").order_by("id"))


@pytest.fixture
def world(db, hubspot):
    """A company sync to the HubSpot emulator (EU only); Acme is at HubSpot already, Beta is
    not, Far is in a region the connection may not receive."""
    connection = make_connection("hubspot", hubspot, allowed_regions=["eu"])
    sync = make_sync(connection, name="Customers to HubSpot")
    acme = CompanyFactory(external_id="ACME-1", name="Acme GmbH", employees=250)
    beta = CompanyFactory(external_id="BETA-2", name="Beta AG")
    far = CompanyFactory(external_id="FAR-3", name="Far Inc", residency_region="us")
    acme_id = hubspot.add_object(
        "companies", {"external_id": "ACME-1", "name": "Acme (old name)", "numberofemployees": "10"}
    )
    return {"sync": sync, "acme": acme, "beta": beta, "far": far, "acme_id": acme_id}


@pytest.fixture
def manager(user_with_role, world):
    manager = user_with_role(roles.MARKETING_MANAGER, username="manny")
    assign_perm("integrations.view_sync", manager, world["sync"])
    assign_perm("integrations.preview_sync", manager, world["sync"])
    return manager


@pytest.fixture
def manager_client(client, manager):
    client.force_login(manager)
    return client


# --- what a run would send, and what the destination holds ------------------------------------


def test_a_manager_sees_the_payload_the_ledger_and_the_destinations_record(
    manager_client, world, hubspot
):
    response, text = _test(manager_client, world["sync"], "ACME-1")

    assert response.status_code == 200
    assert "would be sent" in text
    # The payload under the destination's names, with the backbone's values...
    assert "numberofemployees 250 10 yes" in text
    assert "name Acme GmbH Acme (old name) yes" in text
    assert "external_id ACME-1 ACME-1" in text
    # ...what the write would do, and the ledger: no run planned it yet.
    assert f"would update {world['acme_id']}" in text
    assert "not yet sent" in text
    # The source values read: the company's region among them.
    assert "Source values used" in text and "region eu" in text
    # Only reads at the vendor (the field list and the look-up).
    assert _writes(hubspot) == []
    assert len(hubspot.calls("batch/read")) == 1


def test_a_record_the_destination_does_not_have_would_be_created(manager_client, world, hubspot):
    _, text = _test(manager_client, world["sync"], str(world["beta"].pk))  # by its key

    assert f"Record {world['beta'].pk}" in text
    assert "would create" in text
    assert "HubSpot holds no record with this external_id" in text
    assert "name Beta AG —" in text


def test_a_record_failing_the_gate_shows_its_bucket_and_reason(manager_client, world):
    _, text = _test(manager_client, world["sync"], "FAR-3", by="match")

    assert "would not be sent: blocked" in text
    assert "region us may not be sent to this connection" in text
    assert "would create" not in text


def test_a_record_the_destination_already_has_is_unchanged(manager_client, world, hubspot):
    start_and_drive(world["sync"])
    ledger = list(LedgerEntry.objects.order_by("pk").values())
    runs, requests = SyncRun.objects.count(), len(hubspot.requests)

    _, text = _test(manager_client, world["sync"], "ACME-1")

    assert "would not be sent: unchanged" in text
    assert "destination already has it" in text
    assert "Confirmed by the destination (synced)" in text
    assert "numberofemployees 250 250" in text
    # Nothing written: the ledger as it was, no run, and only reads at the vendor.
    assert list(LedgerEntry.objects.order_by("pk").values()) == ledger
    assert SyncRun.objects.count() == runs
    after = hubspot.requests[requests:]
    assert after and all("batch/read" in c.path or "properties" in c.path for c in after)


def test_nothing_is_written_by_a_test(manager_client, world, hubspot):
    for q in ("ACME-1", "BETA-2", "FAR-3"):
        assert _test(manager_client, world["sync"], q)[0].status_code == 200

    assert not LedgerEntry.objects.exists()
    assert not SyncRun.objects.exists()
    assert _writes(hubspot) == []
    assert hubspot.objects("companies")[0]["properties"]["name"] == "Acme (old name)"


def test_a_record_outside_the_filters_says_so(manager_client, world):
    Sync.objects.filter(pk=world["sync"].pk).update(filters={"country": "FR"})

    _, text = _test(manager_client, world["sync"], "ACME-1")

    assert "is outside this sync's filters" in text
    assert "would be sent" not in text


def test_an_unreachable_vendor_still_shows_the_payload(manager_client, world, hubspot):
    hubspot.stop()

    response, text = _test(manager_client, world["sync"], "ACME-1")

    assert response.status_code == 200
    assert "The look-up at HubSpot failed" in text
    assert "name Acme GmbH" in text
    assert "would be sent" in text


def test_a_refused_token_is_said_on_the_lookup(manager_client, world, hubspot):
    connection = world["sync"].connection
    connection.set_credentials({"token": "wrong"})
    connection.save()

    response, text = _test(manager_client, world["sync"], "ACME-1")

    assert response.status_code == 200
    assert "The look-up at HubSpot failed: HubSpot look-up: HTTP 401" in text
    assert "name Acme GmbH" in text


# --- input ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("q", "by", "error"),
    [
        ("x" * 201, None, "Record: at most 200 characters (got 201)"),
        ("ACME\x00", None, "Null characters are not allowed"),
        ("ACME\x07", None, "control characters are not allowed (found U+0007)"),
        ("ACME-1", "key", "A record key is a whole number"),
        ("99999999999999999999", None, "A record key is a whole number"),
        ("ACME-1", "nonsense", "Select a valid choice"),
        ("", None, "This field is required"),
    ],
)
def test_bad_input_is_a_form_error(manager_client, world, q, by, error):
    response, text = _test(manager_client, world["sync"], q, by)

    assert response.status_code == 400
    assert error in text
    assert _logged()[-1].outcome == "invalid"


def test_an_unknown_record_says_so(manager_client, world):
    _, text = _test(manager_client, world["sync"], "NOPE-9")
    assert "No record of the clients dataset has that external_id" in text

    _, text = _test(manager_client, world["sync"], "999999")
    assert "No record of the clients dataset has that key" in text


# --- who may test -----------------------------------------------------------------------------


def test_only_who_may_preview_the_sync_may_test_it(client, user_with_role, world):
    sync = world["sync"]
    viewer = user_with_role(roles.MARKETING_MANAGER, username="viewer")
    assign_perm("integrations.view_sync", viewer, sync)
    stranger = user_with_role(roles.MARKETING_MANAGER, username="stranger")

    client.force_login(viewer)
    assert client.get(_page(sync), {"q": "ACME-1"}).status_code == 403
    sync_page = client.get(f"/admin/integrations/sync/{sync.pk}/change/").content.decode()
    assert "Test on one record" not in sync_page
    assert [(row.outcome, row.status_code) for row in _logged()] == [("denied", 403)]

    client.force_login(stranger)
    assert client.get(_page(sync), {"q": "ACME-1"}).status_code == 404
    assert client.get(f"/admin/integrations/sync/{sync.pk + 1000}/test-record/").status_code == 404


def test_the_sync_page_links_to_the_test_for_who_may_preview(manager_client, world):
    page = manager_client.get(f"/admin/integrations/sync/{world['sync'].pk}/change/")

    assert f'href="{_page(world["sync"])}"' in page.content.decode()
    assert manager_client.get(_page(world["sync"])).status_code == 200  # the empty form
    assert _logged() == []


def test_each_test_is_access_logged_with_the_record_key(manager_client, manager, world):
    _test(manager_client, world["sync"], "ACME-1")

    (row,) = _logged()
    assert row.actor == "user:manny" and row.user_id == manager.pk
    assert row.dataset == "clients" and row.rows == 1 and row.outcome == "ok"
    assert f"record {world['acme'].pk}" in row.detail and "Customers to HubSpot" in row.detail
    assert "name" in row.fields and "employees" in row.fields


# --- personal data ----------------------------------------------------------------------------


@pytest.fixture
def people(db, hubspot):
    connection = make_connection("hubspot", hubspot, name="HubSpot contacts")
    sync = make_sync(
        connection,
        name="People to HubSpot",
        dataset="contacts",
        obj="contacts",
        mappings=[("first_name", "firstname"), ("last_name", "lastname"), ("country", "country")],
        match=("email", "email"),
    )
    contact = ContactFactory(email="ada@example.com", first_name="Ada", last_name="Lovelace")
    hubspot.add_object("contacts", {"email": "ada@example.com", "firstname": "Augusta"})
    return sync, contact


def test_personal_values_are_hidden_without_the_datasets_permission(
    client, user_with_role, people, hubspot
):
    sync, contact = people
    manager = user_with_role(roles.MARKETING_MANAGER, username="manny")
    assign_perm("integrations.view_sync", manager, sync)
    assign_perm("integrations.preview_sync", manager, sync)
    client.force_login(manager)

    response, text = _test(client, sync, str(contact.pk))

    assert response.status_code == 200
    assert "would be sent" in text and "would update" in text
    assert "country DE" in text  # not personal
    for value in ("ada@example.com", "Ada", "Lovelace", "Augusta"):
        assert value not in text
    assert "firstname (hidden) (hidden)" in text
    assert "shown to who may export it (exports.export_contacts)" in text
    (row,) = _logged()
    assert "@" not in row.detail and "email" not in row.fields and "country" in row.fields

    # Nor may they learn which contact an address is.
    response, text = _test(client, sync, "ada@example.com")
    assert response.status_code == 403
    assert "give the record key instead" in text
    assert "@" not in _logged()[-1].detail and "ada" not in str(_logged()[-1].filters)


def test_a_reason_quoting_a_personal_value_hides_it(client, user_with_role, people):
    sync, contact = people
    LedgerEntry.objects.create(  # another record already holds the address at HubSpot
        sync=sync, record_key="999", status="synced", match_value="ada@example.com"
    )
    manager = user_with_role(roles.MARKETING_MANAGER, username="manny")
    assign_perm("integrations.view_sync", manager, sync)
    assign_perm("integrations.preview_sync", manager, sync)
    client.force_login(manager)

    _, text = _test(client, sync, str(contact.pk))

    assert "would not be sent: invalid" in text
    assert "email '(hidden)' is also record 999's" in text
    assert "ada@example.com" not in text


def test_who_may_export_the_dataset_sees_personal_values(client_for, people):
    sync, contact = people
    client = client_for(roles.INTEGRATION_ADMIN)

    _, text = _test(client, sync, "ADA@example.com")  # the match value, as typed

    assert "firstname Ada Augusta yes" in text
    assert "email ada@example.com ada@example.com" in text
    assert "(hidden)" not in text
    assert "@" not in _logged()[-1].detail
    assert f"record {contact.pk}" in _logged()[-1].detail


# --- other vendors ----------------------------------------------------------------------------


def test_mailchimp_shows_the_member_and_the_consent_gate(client_for, mailchimp):
    connection = make_connection("mailchimp", mailchimp)
    sync = make_sync(
        connection,
        dataset="contacts",
        obj="members",
        mappings=[("first_name", "FNAME")],
        match=("email", "email_address"),
        destination_config={"list_id": "list0001"},
        consent_purpose="email_marketing",
    )
    contact = ContactFactory(email="grace@example.com", first_name="Grace")
    mailchimp.add_member("list0001", "grace@example.com", "unsubscribed", {"FNAME": "G."})

    _, text = _test(client_for(roles.INTEGRATION_ADMIN), sync, str(contact.pk))

    assert "would not be sent: suppressed" in text
    assert "no email_marketing consent (never given)" in text
    assert "status — unsubscribed" in text
    assert "FNAME Grace G. yes" in text
    assert [c.method for c in mailchimp.requests if "/members/" in c.path] == ["GET"]
    assert not [c for c in mailchimp.requests if c.method != "GET"]


def test_a_vendor_without_a_lookup_says_so(client_for, marketo_connection, marketo):
    sync = make_sync(
        marketo_connection,
        obj="companies",
        mappings=[("name", "company")],
        match=("external_id", "externalCompanyId"),
    )
    CompanyFactory(external_id="ACME-1", name="Acme GmbH")

    response, text = _test(client_for(roles.INTEGRATION_ADMIN), sync, "ACME-1")

    assert response.status_code == 200
    assert "This tool does not support a look-up" in text
    assert "company Acme GmbH" in text
