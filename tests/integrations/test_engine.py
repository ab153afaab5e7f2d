"""The sync engine against real HubSpot and Mailchimp emulators."""

import pytest
from django.utils import timezone

from integrations.models import DeadLetter, LedgerEntry, RunStatus
from integrations.models.runs import BUCKETS
from tests.factories import CompanyFactory
from tests.integrations.conftest import start_and_drive


def _buckets_add_up(run):
    assert sum(getattr(run, b) for b in BUCKETS) == run.planned, run.counts()


@pytest.mark.django_db
def test_first_run_creates_every_company_and_the_ledger_records_it(company_sync, hubspot):
    companies = CompanyFactory.create_batch(5)

    run = start_and_drive(company_sync)

    assert run.status == RunStatus.SUCCEEDED, run.error
    assert (run.planned, run.created) == (5, 5)
    _buckets_add_up(run)
    stored = {o["properties"]["external_id"]: o for o in hubspot.objects("companies")}
    assert set(stored) == {c.external_id for c in companies}
    assert stored[companies[0].external_id]["properties"]["numberofemployees"] == "120"
    assert LedgerEntry.objects.filter(sync=company_sync, status="synced").count() == 5
    assert hubspot.violations == []


@pytest.mark.django_db
def test_second_run_sends_only_what_changed(company_sync, hubspot):
    companies = CompanyFactory.create_batch(4)
    start_and_drive(company_sync)
    calls_before = len(hubspot.calls("batch/upsert"))
    changed = companies[1]
    changed.name = "Renamed Ltd"
    changed.updated_at = timezone.now()
    changed.save()

    run = start_and_drive(company_sync)

    assert (run.planned, run.updated, run.created) == (1, 1, 0)
    assert len(hubspot.calls("batch/upsert")) == calls_before + 1
    assert (
        hubspot.find("companies", "external_id", changed.external_id)["properties"]["name"]
        == "Renamed Ltd"
    )
    assert hubspot.create_count("companies", "external_id", changed.external_id) == 1


@pytest.mark.django_db
def test_rejected_record_is_dead_lettered_with_the_vendor_message(company_sync, hubspot):
    good, bad = CompanyFactory(), CompanyFactory(name="POISON")
    hubspot.reject_values("companies", "name", "POISON", "Name is not allowed")

    run = start_and_drive(company_sync)

    assert (run.created, run.dead_lettered) == (1, 1)
    assert run.status == RunStatus.PARTIAL
    letter = DeadLetter.objects.get()
    assert letter.record_key == str(bad.pk) and "not allowed" in letter.error
    assert LedgerEntry.objects.get(record_key=str(good.pk)).status == "synced"
    _buckets_add_up(run)
