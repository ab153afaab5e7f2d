"""Contacts to a Mailchimp audience: consent first, opt-outs honoured, archive for mirror."""

from datetime import timedelta

import pytest
from django.utils import timezone

from integrations.models import LedgerEntry
from tests.factories import NOW, ConsentRecordFactory, ContactFactory
from tests.integrations.conftest import make_sync, start_and_drive

MAPPINGS = [("first_name", "FNAME"), ("last_name", "LNAME"), ("company_name", "COMPANY")]


def make_member_sync(connection):
    """Consented contacts to the emulator's default audience."""
    return make_sync(
        connection,
        dataset="contacts",
        obj="members",
        mappings=MAPPINGS,
        match=("email", "email_address"),
        destination_config={"list_id": "list0001"},
        consent_purpose="email_marketing",
    )


@pytest.fixture
def member_sync(mailchimp_connection):
    return make_member_sync(mailchimp_connection)


def _consented(**kwargs):
    contact = ContactFactory(**kwargs)
    ConsentRecordFactory(contact=contact, status="granted")
    return contact


@pytest.mark.django_db
def test_only_contacts_with_consent_are_subscribed(member_sync, mailchimp):
    granted = _consented(first_name="Grace")
    withdrawn = ContactFactory()
    ConsentRecordFactory(contact=withdrawn, status="granted", recorded_at=NOW - timedelta(days=3))
    ConsentRecordFactory(contact=withdrawn, status="withdrawn", recorded_at=NOW)  # the later
    never = ContactFactory()

    run = start_and_drive(member_sync)

    assert (run.created, run.suppressed) == (1, 2)
    members = {m["email_address"]: m for m in mailchimp.members("list0001")}
    assert set(members) == {granted.email}
    assert members[granted.email]["status"] == "subscribed"
    assert members[granted.email]["merge_fields"]["FNAME"] == "Grace"
    reasons = dict(LedgerEntry.objects.values_list("record_key", "last_error"))
    assert "withdrawn" in reasons[str(withdrawn.pk)] and "never given" in reasons[str(never.pk)]
    assert mailchimp.violations == []


@pytest.mark.django_db
def test_consent_given_later_is_picked_up_by_the_next_run(member_sync, mailchimp):
    contact = ContactFactory()
    start_and_drive(member_sync)

    ConsentRecordFactory(contact=contact, status="granted", recorded_at=timezone.now())
    run = start_and_drive(member_sync)

    assert run.created == 1
    assert mailchimp.member("list0001", contact.email)["status"] == "subscribed"


@pytest.mark.django_db
def test_an_unsubscribed_member_is_never_resubscribed(member_sync, mailchimp):
    contact = _consented(first_name="Olivia")
    mailchimp.add_member("list0001", contact.email, status="unsubscribed")

    run = start_and_drive(member_sync)

    member = mailchimp.member("list0001", contact.email)
    assert member["status"] == "unsubscribed"
    assert member["merge_fields"]["FNAME"] == "Olivia"  # data updated, opt-out kept
    assert run.updated == 1 and run.dead_lettered == 0
    assert mailchimp.violations == []


@pytest.mark.django_db
def test_member_who_unsubscribes_after_a_sync_stays_unsubscribed(member_sync, mailchimp):
    contact = _consented(first_name="Ann")
    start_and_drive(member_sync)
    mailchimp.set_member_status("list0001", contact.email, "unsubscribed")

    contact.first_name = "Anne"
    contact.updated_at = timezone.now()
    contact.save()
    start_and_drive(member_sync)

    member = mailchimp.member("list0001", contact.email)
    assert (member["status"], member["merge_fields"]["FNAME"]) == ("unsubscribed", "Anne")
    assert mailchimp.violations == []


@pytest.mark.django_db
def test_invalid_email_is_invalid_not_sent(member_sync, mailchimp):
    _consented(email="not-an-email")
    good = _consented()

    run = start_and_drive(member_sync)

    assert (run.created, run.invalid) == (1, 1)
    assert [m["email_address"] for m in mailchimp.members("list0001")] == [good.email]


@pytest.mark.django_db
def test_mirror_archives_members_and_never_deletes_permanently(mailchimp_connection, mailchimp):
    sync = make_sync(
        mailchimp_connection,
        dataset="contacts",
        obj="members",
        mappings=MAPPINGS,
        match=("email", "email_address"),
        destination_config={"list_id": "list0001"},
        consent_purpose="email_marketing",
        mode="mirror",
        mirror_max_delete_share=0.5,
    )
    contacts = [_consented() for _ in range(3)]
    start_and_drive(sync)

    contacts[0].delete()
    run = start_and_drive(sync)

    assert run.deleted == 1
    assert mailchimp.member("list0001", contacts[0].email)["status"] == "archived"
    assert mailchimp.violations == []


@pytest.mark.django_db
def test_batches_respect_the_500_member_limit(member_sync, mailchimp):
    for _ in range(520):
        _consented()

    run = start_and_drive(member_sync)

    assert run.created == 520
    sizes = [len(r.body["members"]) for r in mailchimp.calls("/lists/list0001", method="POST")]
    assert max(sizes) <= 500
    assert mailchimp.violations == []


@pytest.mark.django_db
def test_a_base_url_override_may_name_the_host_alone(member_sync, mailchimp):
    """Mailchimp's API lives under /3.0: an override without it (the emulator's address, a
    proxy) is completed instead of sending every request to a wrong path."""
    connection = member_sync.connection
    connection.base_url = mailchimp.url  # no /3.0
    connection.save()
    contact = _consented()

    run = start_and_drive(member_sync)

    assert run.created == 1 and run.failed == 0
    assert {m["email_address"] for m in mailchimp.members("list0001")} == {contact.email}
    assert all(call.path.startswith("/3.0/") for call in mailchimp.requests)
