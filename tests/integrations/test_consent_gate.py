"""The consent gate with the HTTP consent service (tests/fakes/consent.py): checked at plan
time and again at send time, failing closed (deferred, planned again next run), with the
decision that allowed each send kept in the ledger."""

import time

import pytest

from audit.models import OutboundLog
from exports.backbone.providers.consent import consent_record
from integrations.engine.runs import batch_execute, run_execute
from integrations.models import LedgerEntry, LedgerStatus, RunStatus, SyncBatch
from integrations.models.runs import BUCKETS, BatchStatus
from integrations.services import sync_run_start
from tests.factories import ConsentRecordFactory, ContactFactory
from tests.integrations.conftest import drive, make_sync, start_and_drive

CONTACT_MAPPINGS = [("first_name", "firstname"), ("last_name", "lastname")]


@pytest.fixture
def contact_sync(hubspot_connection):
    return make_sync(
        hubspot_connection,
        dataset="contacts",
        obj="contacts",
        mappings=CONTACT_MAPPINGS,
        match=("email", "email"),
        consent_purpose="email_marketing",
    )


def granted_contacts(service, n):
    contacts = ContactFactory.create_batch(n)
    for contact in contacts:
        service.set_consent(contact.pk, "email_marketing", "granted")
    return contacts


def stored_emails(hubspot):
    return {o["properties"]["email"] for o in hubspot.objects("contacts")}


def assert_counts_add_up(run):
    assert sum(getattr(run, b) for b in BUCKETS) == run.planned, run.counts()


@pytest.mark.django_db
def test_consent_service_down_sends_nothing_and_everything_once_it_is_back(
    contact_sync, consent_service, hubspot
):
    contacts = granted_contacts(consent_service, 30)
    consent_service.stop()  # connection refused

    run = start_and_drive(contact_sync)

    assert hubspot.objects("contacts") == []
    assert (run.status, run.deferred, run.created) == (RunStatus.DEFERRED, 30, 0)
    assert "30 records deferred: the consent service did not answer" in run.error
    assert "planned again on the next run" in run.error
    assert_counts_add_up(run)
    entries = LedgerEntry.objects.filter(sync=contact_sync)
    assert set(entries.values_list("status", flat=True)) == {LedgerStatus.PENDING}
    assert all(
        e.startswith("consent unavailable: ") for e in entries.values_list("last_error", flat=True)
    )
    assert not contact_sync.dead_letters.exists()

    consent_service.start()
    again = start_and_drive(contact_sync)

    assert (again.status, again.created, again.deferred) == (RunStatus.SUCCEEDED, 30, 0)
    assert stored_emails(hubspot) == {c.email.lower() for c in contacts}
    assert max(o["created_count"] for o in hubspot.objects("contacts")) == 1
    assert hubspot.violations == []


@pytest.mark.django_db
def test_each_send_keeps_the_consent_decision_that_allowed_it(
    contact_sync, consent_service, hubspot
):
    contact = granted_contacts(consent_service, 1)[0]
    _, version = consent_service.consent(contact.pk, "email_marketing")
    before = time.time()

    start_and_drive(contact_sync)

    entry = LedgerEntry.objects.get(sync=contact_sync, record_key=str(contact.pk))
    assert entry.status == LedgerStatus.SYNCED
    assert (entry.consent_source, entry.consent_ref) == ("http", version)
    assert entry.consent_checked_at.timestamp() >= before - 1


@pytest.mark.django_db
def test_a_service_error_or_a_malformed_answer_defers_and_never_dead_letters(
    contact_sync, consent_service, hubspot
):
    granted_contacts(consent_service, 4)

    consent_service.fail_next(1, 503, writes_only=False)  # the plan's look-up
    first = start_and_drive(contact_sync)
    assert (first.deferred, first.status) == (4, RunStatus.DEFERRED)
    assert "consent service answered 503" in first.error

    # An answer that leaves the subjects out: none of it is trusted.
    empty = {"purpose": "email_marketing", "results": []}
    consent_service.fail_next(1, 200, body=empty, writes_only=False)
    second = start_and_drive(contact_sync)
    assert (second.deferred, second.created) == (4, 0)
    assert "answered for 0 of 4 subjects" in second.error

    # The plan is answered; the send-time check gets something that is not JSON.
    consent_service.fail_next(1, 200, body="<html>maintenance</html>", writes_only=False, after=1)
    third = start_and_drive(contact_sync)
    assert (third.deferred, third.created, third.status) == (4, 0, RunStatus.DEFERRED)
    assert "not JSON" in third.error
    assert hubspot.objects("contacts") == []

    fourth = start_and_drive(contact_sync)
    assert (fourth.created, fourth.deferred, fourth.status) == (4, 0, RunStatus.SUCCEEDED)
    assert not contact_sync.dead_letters.exists()
    for run in (first, second, third, fourth):
        assert_counts_add_up(run)


@pytest.mark.django_db
def test_a_withdrawal_between_plan_and_send_stops_the_send(contact_sync, consent_service, hubspot):
    stays, leaves = granted_contacts(consent_service, 2)
    run = sync_run_start(sync=contact_sync, trigger="manual")
    run_execute(run_id=run.pk)  # planned: both granted (and cached)
    consent_service.set_consent(leaves.pk, "email_marketing", "withdrawn")

    for batch in SyncBatch.objects.filter(run=run, status=BatchStatus.QUEUED):
        batch_execute(batch_id=batch.pk)

    run.refresh_from_db()
    assert stored_emails(hubspot) == {stays.email.lower()}
    assert (run.created, run.suppressed) == (1, 1)
    entry = LedgerEntry.objects.get(sync=contact_sync, record_key=str(leaves.pk))
    assert entry.status == LedgerStatus.SKIPPED and "withdrawn" in entry.last_error


@pytest.mark.django_db
def test_a_withdrawal_in_the_local_table_between_plan_and_send_stops_the_send(
    contact_sync, hubspot
):
    stays, leaves = ContactFactory.create_batch(2)
    for contact in (stays, leaves):
        ConsentRecordFactory(contact=contact, status="granted")
    run = sync_run_start(sync=contact_sync, trigger="manual")
    run_execute(run_id=run.pk)
    withdrawal = consent_record(
        contact_id=leaves.pk,
        purpose="email_marketing",
        status="withdrawn",
        source="hubspot",
        evidence={"vendor": "hubspot", "event_id": "e-1"},
    )

    drive(run)

    run.refresh_from_db()
    assert stored_emails(hubspot) == {stays.email.lower()}
    assert (run.created, run.suppressed) == (1, 1)
    sent = LedgerEntry.objects.get(sync=contact_sync, record_key=str(stays.pk))
    granted = stays.consents.get()
    assert (sent.consent_source, sent.consent_ref) == ("local", str(granted.pk))
    assert withdrawal.reference == str(leaves.consents.latest("recorded_at").pk)


@pytest.mark.django_db
def test_a_slow_consent_service_is_waited_for_at_most_its_timeout(
    contact_sync, consent_service, hubspot, settings
):
    settings.MKT_CONSENT_TIMEOUT_SECONDS = 0.5
    settings.MKT_CONSENT_BATCH_SIZE = 10
    granted_contacts(consent_service, 40)  # four look-ups per call, if it asked them all
    consent_service.set_slow(5)

    started = time.monotonic()
    run = start_and_drive(contact_sync)
    took = time.monotonic() - started

    assert (run.deferred, run.status) == (40, RunStatus.DEFERRED)
    assert "timed out" in run.error
    # One look-up at plan time: the first timeout ends the call (fail fast), not four more.
    asked = OutboundLog.objects.filter(vendor="consent", path="/v1/consent/lookup")
    assert [(log.status, log.error[:7]) for log in asked] == [(None, "timeout")]
    assert took < 3, took
    consent_service.set_slow(0)


@pytest.mark.django_db
def test_a_flapping_service_only_ever_lets_answered_records_through(
    contact_sync, consent_service, hubspot, settings
):
    settings.MKT_CONSENT_BATCH_SIZE = 5
    settings.MKT_CONSENT_CACHE_SECONDS = 0
    contacts = granted_contacts(consent_service, 20)
    refused = contacts[:4]
    for contact in refused:
        consent_service.set_consent(contact.pk, "email_marketing", "denied")
    consent_service.set_flapping(0.4)  # two requests in five get a 503

    runs = []
    while len(runs) < 10 and (not runs or runs[-1].deferred):
        runs.append(start_and_drive(contact_sync))
        # Nothing is ever sent without an answer: only granted contacts reach HubSpot.
        assert stored_emails(hubspot) <= {c.email.lower() for c in contacts[4:]}

    assert sum(r.deferred for r in runs) > 0 and len(runs) > 1  # it did flap
    assert stored_emails(hubspot) == {c.email.lower() for c in contacts[4:]}
    assert sum(r.created for r in runs) == 16
    for run in runs:
        assert_counts_add_up(run)
    assert not contact_sync.dead_letters.exists()
    entries = LedgerEntry.objects.filter(sync=contact_sync, status=LedgerStatus.SYNCED)
    assert entries.count() == 16 and all(e.consent_ref for e in entries)
