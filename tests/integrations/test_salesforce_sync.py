"""Salesforce behaviour beyond the contract: Lead-or-Contact routing (in runs and in Preview),
Account linkage, opt-outs, several records on one external id, locked rows."""

from __future__ import annotations

import pytest
from django.utils import timezone

from integrations.models import DeadLetter, FieldMapping, LedgerEntry, RunStatus
from integrations.services import sync_preview, sync_validate
from tests.factories import CompanyFactory, ConsentRecordFactory
from tests.integrations.conftest import make_sync, start_and_drive
from tests.integrations.contract.profiles.base import consented_contacts
from tests.integrations.contract.profiles.salesforce import connected

pytestmark = pytest.mark.django_db

PEOPLE = [
    ("first_name", "FirstName"),
    ("last_name", "LastName"),
    ("email", "Email"),
    ("company_name", "Company"),
]


def lead_sync(salesforce, **fields):
    return make_sync(
        connected("salesforce", salesforce),
        dataset="contacts",
        obj="Lead",
        mappings=fields.pop("mappings", PEOPLE),
        match=("email", "External_Id__c"),
        consent_purpose="email_marketing",
        **fields,
    )


def test_a_person_who_is_a_contact_is_updated_as_that_contact_and_others_become_leads(
    salesforce,
):
    known, new = consented_contacts(2)
    known.email = "Grace@Example.com"
    known.save()
    contact_id = salesforce.add_record(
        "Contact", {"LastName": "Hopper", "Email": "grace@example.com", "Title": "Admiral"}
    )
    sync = lead_sync(salesforce, destination_config={"contacts_first": True})

    preview = sync_preview(sync=sync)
    run = start_and_drive(sync)

    said = {r["key"]: r.get("would") for r in preview.preview["records"]}
    assert said == {
        str(known.pk): f"would update Contact {contact_id}",
        str(new.pk): "would create Lead",
    }
    assert (run.status, run.updated, run.created) == (RunStatus.SUCCEEDED, 1, 1), run.counts()
    contact = salesforce.record(contact_id)
    assert (contact["FirstName"], contact["Title"]) == (known.first_name, "Admiral")
    assert contact["External_Id__c"] is None  # the Lead's external id stays off the Contact
    assert salesforce.find("Lead", "Email", "grace@example.com") is None  # no Lead for her
    lead = salesforce.find("Lead", "External_Id__c", new.email)
    assert lead["Company"] == new.company.name
    ids = dict(LedgerEntry.objects.filter(sync=sync).values_list("record_key", "destination_id"))
    assert ids == {str(known.pk): contact_id, str(new.pk): lead["Id"]}
    assert salesforce.violations == []


def test_a_lead_converted_in_salesforce_is_updated_as_its_contact_from_then_on(salesforce):
    [person] = consented_contacts(1)
    sync = lead_sync(salesforce, destination_config={"contacts_first": True})
    start_and_drive(sync)
    lead = salesforce.find("Lead", "External_Id__c", person.email)
    contact_id = salesforce.convert_lead(lead["Id"])  # a salesperson qualified them

    person.first_name = "Augusta"
    person.updated_at = timezone.now()
    person.save()
    preview = sync_preview(sync=sync)
    run = start_and_drive(sync)

    assert preview.preview["records"][0]["would"] == f"would update Contact {contact_id}"
    assert (run.status, run.updated, run.created, run.dead_lettered) == (
        RunStatus.SUCCEEDED,
        1,
        0,
        0,
    ), run.counts()
    assert salesforce.record(contact_id)["FirstName"] == "Augusta"
    assert salesforce.record(lead["Id"])["FirstName"] == "Ada"  # the converted Lead is left


def test_without_contacts_first_people_are_leads_whatever_the_contacts(salesforce):
    [person] = consented_contacts(1)
    salesforce.add_record("Contact", {"LastName": "X", "Email": person.email})
    sync = lead_sync(salesforce)

    run = start_and_drive(sync)

    assert (run.created, run.updated) == (1, 0)
    assert salesforce.find("Lead", "External_Id__c", person.email) is not None


def test_routing_needs_the_email_mapped(salesforce):
    consented_contacts(1)
    sync = lead_sync(
        salesforce,
        mappings=[("last_name", "LastName"), ("company_name", "Company")],
        destination_config={"contacts_first": True},
    )

    run = start_and_drive(sync)

    sync.refresh_from_db()
    assert run.status == RunStatus.PAUSED
    assert "map Email" in sync.pause_reason


def test_contacts_carry_their_companys_account_by_its_external_id(salesforce):
    company = CompanyFactory(external_id="C-42")
    account_id = salesforce.add_record("Account", {"Name": "Acme", "External_Id__c": "C-42"})
    [person] = consented_contacts(1, company=company)
    sync = make_sync(
        connected("salesforce", salesforce),
        dataset="contacts",
        obj="Contact",
        mappings=[
            ("last_name", "LastName"),
            ("email", "Email"),
            ("company_external_id", "Account.External_Id__c"),
        ],
        match=("email", "External_Id__c"),
        consent_purpose="email_marketing",
    )

    sync_validate(sync, list(sync.mappings.all()))  # the lookup is a field of Contact
    run = start_and_drive(sync)

    assert (run.status, run.created) == (RunStatus.SUCCEEDED, 1), run.counts()
    contact = salesforce.find("Contact", "External_Id__c", person.email)
    assert contact["AccountId"] == account_id
    [upsert] = salesforce.calls("/composite/sobjects/Contact/External_Id__c")
    assert upsert.body["records"][0]["Account"] == {"External_Id__c": "C-42"}


def test_a_contact_whose_account_is_missing_is_dead_lettered_with_salesforces_reason(salesforce):
    consented_contacts(1, company=CompanyFactory(external_id="C-404"))
    sync = make_sync(
        connected("salesforce", salesforce),
        dataset="contacts",
        obj="Contact",
        mappings=[("last_name", "LastName"), ("company_external_id", "Account.External_Id__c")],
        match=("email", "External_Id__c"),
        consent_purpose="email_marketing",
    )

    run = start_and_drive(sync)

    assert run.dead_lettered == 1
    letter = DeadLetter.objects.get(sync=sync)
    assert "Foreign key external ID: C-404 not found" in letter.error
    assert letter.error_code == "INVALID_FIELD"


def _opt_out_sync(salesforce, **fields):
    sync = make_sync(
        connected("salesforce", salesforce),
        dataset="contacts",
        obj="Contact",
        mappings=[("first_name", "FirstName"), ("last_name", "LastName")],
        match=("email", "External_Id__c"),
        consent_purpose="email_marketing",
        **fields,
    )
    FieldMapping.objects.create(
        sync=sync,
        source_field="email_consent",
        destination_field="HasOptedOutOfEmail",
        value_map={"granted": "false", "withdrawn": "true", "denied": "true"},
        position=9,
    )
    return sync


def test_a_contact_who_withdraws_consent_is_opted_out_in_salesforce_never_deleted(salesforce):
    stays, withdraws = consented_contacts(2)
    [never_sent] = consented_contacts(1)
    ConsentRecordFactory(contact=never_sent, status="withdrawn", recorded_at=timezone.now())
    sync = _opt_out_sync(salesforce, mode="mirror", mirror_max_delete_share=1)
    first = start_and_drive(sync)
    assert (first.created, first.suppressed) == (2, 1), first.counts()

    ConsentRecordFactory(contact=withdraws, status="withdrawn", recorded_at=timezone.now())
    second = start_and_drive(sync)
    third = start_and_drive(sync, full=True)

    assert (second.updated, second.created, second.deleted) == (1, 0, 0), second.counts()
    record = salesforce.find("Contact", "External_Id__c", withdraws.email)
    assert record["HasOptedOutOfEmail"] is True and not record["IsDeleted"]
    assert record["FirstName"] == withdraws.first_name  # kept as it was
    opt_out = salesforce.calls("/composite/sobjects/Contact")[-1]
    assert opt_out.body["records"][0] == {
        "attributes": {"type": "Contact"},
        "External_Id__c": withdraws.email,
        "HasOptedOutOfEmail": True,
    }  # nothing else about the person is sent once they withdrew
    assert salesforce.find("Contact", "External_Id__c", stays.email)["HasOptedOutOfEmail"] is False
    assert salesforce.find("Contact", "External_Id__c", never_sent.email) is None
    assert (third.unchanged, third.updated, third.deleted) == (3, 0, 0), third.counts()


def test_several_records_on_one_external_id_are_a_rejection_naming_them(salesforce):
    [company] = CompanyFactory.create_batch(1)
    first = salesforce.add_record("Account", {"Name": "A", "External_Id__c": company.external_id})
    second = salesforce.add_record("Account", {"Name": "B", "External_Id__c": company.external_id})
    sync = make_sync(
        connected("salesforce", salesforce),
        obj="Account",
        mappings=[("name", "Name")],
        match=("external_id", "External_Id__c"),
    )

    run = start_and_drive(sync)

    assert (run.status, run.dead_lettered) == (RunStatus.PARTIAL, 1)
    letter = DeadLetter.objects.get(sync=sync)
    assert letter.error_code == "DUPLICATE_EXTERNAL_ID"
    assert "several Salesforce records have this external id" in letter.error
    assert first in letter.error and second in letter.error


def test_a_locked_row_is_retried_next_run_not_dead_lettered(salesforce):
    locked, _ = CompanyFactory.create_batch(2)
    record_id = salesforce.add_record(
        "Account", {"Name": "L", "External_Id__c": locked.external_id}
    )
    salesforce.lock(record_id)
    sync = make_sync(
        connected("salesforce", salesforce),
        obj="Account",
        mappings=[("name", "Name")],
        match=("external_id", "External_Id__c"),
    )

    first = start_and_drive(sync)
    salesforce.unlock_all()
    second = start_and_drive(sync)

    assert (first.updated, first.created, first.rejected, first.dead_lettered) == (0, 1, 1, 0)
    assert (second.planned, second.updated) == (1, 1), second.counts()
    entry = LedgerEntry.objects.get(sync=sync, record_key=str(locked.pk))
    assert entry.status == "synced"
    assert salesforce.record(record_id)["Name"] == locked.name


def test_a_custom_object_must_be_named_in_the_sync(salesforce):
    CompanyFactory()
    sync = make_sync(
        connected("salesforce", salesforce),
        obj="custom",
        mappings=[("name", "Name")],
        match=("external_id", "External_Id__c"),
        destination_config={"sobject": "Invoice"},
    )

    with pytest.raises(Exception, match="ends in __c"):
        sync_validate(sync, list(sync.mappings.all()))
