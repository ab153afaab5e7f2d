"""Failures, retries, pauses and guards: nothing is lost, nothing is sent twice."""

from datetime import timedelta

import pytest
from django.utils import timezone

from integrations.engine.runs import run_execute, runs_reap
from integrations.models import (
    DeadLetter,
    LedgerEntry,
    RunStatus,
    Sync,
    SyncBatch,
    SyncRun,
)
from integrations.models.runs import BUCKETS, BatchStatus
from integrations.services import (
    SyncBusy,
    connection_test,
    deadletters_replay,
    sync_preview,
    sync_run_start,
    sync_set_paused,
)
from tests.factories import CompanyFactory
from tests.integrations.conftest import drive, make_sync, start_and_drive


def _add_up(run):
    assert sum(getattr(run, b) for b in BUCKETS) == run.planned, run.counts()


@pytest.mark.django_db
def test_failed_record_is_retried_next_run(company_sync, hubspot, settings):
    settings.MKT_SYNC_BATCH_ATTEMPTS = 2
    companies = CompanyFactory.create_batch(3)
    hubspot.fail_next(2, status=503)  # both attempts of the only batch

    first = start_and_drive(company_sync)

    assert (first.failed, first.created, first.status) == (3, 0, RunStatus.PARTIAL)
    assert set(LedgerEntry.objects.values_list("status", flat=True)) == {"failed"}
    second = start_and_drive(company_sync)  # nothing changed in the source
    assert (second.planned, second.created) == (3, 3)
    assert {o["properties"]["external_id"] for o in hubspot.objects("companies")} == {
        c.external_id for c in companies
    }
    _add_up(first)
    _add_up(second)


@pytest.mark.django_db
def test_5xx_storm_loses_nothing_within_the_run(company_sync, hubspot):
    CompanyFactory.create_batch(6)
    hubspot.fail_next(3, status=502)

    run = start_and_drive(company_sync)

    assert (run.created, run.status) == (6, RunStatus.SUCCEEDED)
    assert SyncBatch.objects.get(run=run).attempt == 3


@pytest.mark.django_db
def test_429_is_waited_out_and_costs_no_attempt(hubspot, hubspot_connection):
    sync = make_sync(hubspot_connection)
    CompanyFactory.create_batch(250)  # three batches
    hubspot.fail_next(2, status=429, headers={"Retry-After": "1"})

    run = start_and_drive(sync)

    assert (run.created, run.status) == (250, RunStatus.SUCCEEDED)
    assert run.rate_limited == 2
    assert all(b.attempt == 0 for b in SyncBatch.objects.filter(run=run))
    assert hubspot.violations == []


@pytest.mark.django_db
def test_a_tight_vendor_window_is_respected_without_429s(hubspot, hubspot_connection):
    sync = make_sync(hubspot_connection)  # our budget is generous; the vendor's is not
    CompanyFactory.create_batch(250)
    hubspot.set_rate_limit(1, 0.5)

    run = start_and_drive(sync)

    assert (run.created, run.status) == (250, RunStatus.SUCCEEDED)
    assert hubspot.rate_limited_count == 0  # the rate headers held us back in time


@pytest.mark.django_db
def test_wrong_credentials_pause_the_sync_and_lose_nothing(company_sync, hubspot):
    connection = company_sync.connection
    connection.set_credentials({"token": "wrong"})
    connection.save()
    CompanyFactory.create_batch(2)

    run = start_and_drive(company_sync)

    company_sync.refresh_from_db()
    connection.refresh_from_db()
    assert run.status == RunStatus.PAUSED and run.failed == 2
    assert company_sync.paused and "401" in company_sync.pause_reason
    assert connection.status == "auth_failed"
    ok, message = connection_test(connection=connection)
    assert not ok and "Authentication credentials not found" in message

    connection.set_credentials({"token": hubspot.credential})
    connection.save()
    sync_set_paused(sync=company_sync, paused=False)
    resumed = start_and_drive(company_sync)
    assert resumed.created == 2


@pytest.mark.django_db
def test_a_rejected_record_is_delivered_after_the_data_is_fixed_and_replayed(company_sync, hubspot):
    bad = CompanyFactory(name="POISON")
    hubspot.reject_values("companies", "name", "POISON", "name rejected")
    start_and_drive(company_sync)
    assert DeadLetter.objects.get().status == "open"

    again = start_and_drive(company_sync)  # not replayed, not changed: left alone
    assert (again.planned, again.created) == (0, 0)

    bad.name = "Fixed GmbH"
    bad.save()  # the source is fixed without touching updated_at; the replay forces it
    count, run = deadletters_replay(sync=company_sync)
    run = drive(run)
    assert count == 1 and run.created == 1
    assert DeadLetter.objects.get().status == "replayed"
    assert (
        hubspot.find("companies", "external_id", bad.external_id)["properties"]["name"]
        == "Fixed GmbH"
    )


@pytest.mark.django_db
def test_whole_batch_refusal_is_split_to_find_the_bad_record(company_sync, hubspot):
    CompanyFactory.create_batch(4)
    hubspot.fail_next(
        1,
        status=400,
        body={"status": "error", "message": "bad batch", "category": "VALIDATION_ERROR"},
    )

    run = start_and_drive(company_sync)

    assert (run.created, run.dead_lettered, run.status) == (4, 0, RunStatus.SUCCEEDED)
    assert SyncBatch.objects.filter(run=run).count() == 3  # the batch and its two halves
    _add_up(run)


@pytest.mark.django_db
def test_mirror_archives_only_records_this_sync_created(hubspot, hubspot_connection):
    sync = make_sync(hubspot_connection, mode="mirror", mirror_max_delete_share=0.5)
    theirs = CompanyFactory()
    hubspot.add_object("companies", {"external_id": theirs.external_id, "name": "pre-existing"})
    ours = CompanyFactory.create_batch(4)
    start_and_drive(sync)
    assert LedgerEntry.objects.get(record_key=str(theirs.pk)).created_by_sync is False

    theirs.delete()
    ours[0].delete()
    run = start_and_drive(sync)

    assert run.deleted == 1
    archived = {
        o["properties"]["external_id"] for o in hubspot.objects("companies") if o["archived"]
    }
    assert archived == {ours[0].external_id}


@pytest.mark.django_db
def test_mirror_refuses_to_archive_too_many_and_says_why(hubspot, hubspot_connection):
    sync = make_sync(hubspot_connection, mode="mirror", mirror_max_delete_share=0.1)
    companies = CompanyFactory.create_batch(5)
    start_and_drive(sync)

    for company in companies[:2]:
        company.delete()
    run = start_and_drive(sync)

    assert run.deleted == 0 and run.blocked == 2
    assert "Mirror delete guard" in run.error
    assert not [o for o in hubspot.objects("companies") if o["archived"]]


@pytest.mark.django_db
def test_create_only_after_a_crash_looks_up_before_creating_again(hubspot, hubspot_connection):
    sync = make_sync(hubspot_connection, mode="create_only")
    company = CompanyFactory()
    # A previous attempt created it at HubSpot, then the worker died before committing.
    hubspot.add_object("companies", {"external_id": company.external_id, "name": company.name})
    LedgerEntry.objects.create(
        sync=sync,
        record_key=str(company.pk),
        status="intent_create",
        match_value=company.external_id,
    )

    run = start_and_drive(sync)

    assert run.unchanged == 1 and run.created == 0
    assert hubspot.create_count("companies", "external_id", company.external_id) <= 1
    assert len(hubspot.objects("companies")) == 1


@pytest.mark.django_db
def test_update_only_creates_nothing(hubspot, hubspot_connection):
    sync = make_sync(hubspot_connection, mode="update_only")
    known, unknown = CompanyFactory(), CompanyFactory()
    hubspot.add_object("companies", {"external_id": known.external_id, "name": "old"})

    run = start_and_drive(sync)

    assert (run.updated, run.unchanged, run.created) == (1, 1, 0)
    assert hubspot.find("companies", "external_id", unknown.external_id) is None


@pytest.mark.django_db
def test_null_and_duplicate_match_keys_are_invalid_with_a_reason(hubspot, hubspot_connection):
    hubspot.add_property("companies", "web_domain", unique=True)
    sync = make_sync(hubspot_connection, match=("domain", "web_domain"))
    CompanyFactory(domain="")
    first = CompanyFactory(domain="same.example")
    CompanyFactory(domain="same.example")

    run = start_and_drive(sync)

    assert (run.created, run.invalid) == (1, 2)
    reasons = set(LedgerEntry.objects.filter(status="skipped").values_list("last_error", flat=True))
    assert any("no value in domain" in r for r in reasons)
    assert any(f"record {first.pk}" in r for r in reasons)
    _add_up(run)


@pytest.mark.django_db
def test_records_outside_the_connections_regions_are_blocked(hubspot, db):
    from tests.integrations.conftest import make_connection

    connection = make_connection("hubspot", hubspot, allowed_regions=["eu"])
    sync = make_sync(connection)
    CompanyFactory(residency_region="eu")
    us = CompanyFactory(residency_region="us", country="US")

    run = start_and_drive(sync)

    assert (run.created, run.blocked) == (1, 1)
    assert hubspot.find("companies", "external_id", us.external_id) is None


@pytest.mark.django_db
def test_preview_shows_the_plan_and_sends_nothing(company_sync, hubspot):
    CompanyFactory.create_batch(3)

    preview = sync_preview(sync=company_sync)

    assert preview.status == RunStatus.PREVIEW and preview.planned == 3
    assert preview.preview["would_send"] == 3
    assert preview.preview["records"][0]["payload"]["name"].startswith("Test Company")
    assert hubspot.calls("batch/upsert") == [] and not LedgerEntry.objects.exists()


@pytest.mark.django_db
def test_two_runs_of_one_sync_never_overlap(company_sync):
    first = sync_run_start(sync=company_sync, trigger="manual")

    with pytest.raises(SyncBusy) as busy:
        sync_run_start(sync=company_sync, trigger="manual")
    assert busy.value.run == first


@pytest.mark.django_db
def test_a_run_is_claimed_once(company_sync, hubspot):
    CompanyFactory()
    run = sync_run_start(sync=company_sync, trigger="manual")
    run_execute(run_id=run.pk)
    batches = SyncBatch.objects.count()

    run_execute(run_id=run.pk)  # a duplicate delivery of the task

    assert SyncBatch.objects.count() == batches


@pytest.mark.django_db
def test_reaper_puts_back_a_batch_whose_worker_died(company_sync, hubspot):
    CompanyFactory()
    run = sync_run_start(sync=company_sync, trigger="manual")
    run_execute(run_id=run.pk)
    old = timezone.now() - timedelta(hours=1)
    SyncBatch.objects.update(status=BatchStatus.RUNNING, heartbeat_at=old)

    assert runs_reap()["batches"] == 1
    assert SyncBatch.objects.get().status == BatchStatus.QUEUED
    run = drive(SyncRun.objects.get(pk=run.pk))
    assert run.status == RunStatus.SUCCEEDED and run.created == 1


@pytest.mark.django_db
def test_changing_the_mapping_replans_every_record(company_sync, hubspot):
    CompanyFactory.create_batch(3)
    start_and_drive(company_sync)
    company_sync.mappings.filter(destination_field="country").update(source_field="city")
    Sync.objects.filter(pk=company_sync.pk).update(config_version=company_sync.config_version + 1)
    company_sync.refresh_from_db()

    run = start_and_drive(company_sync)

    assert (run.planned, run.updated) == (3, 3)


@pytest.mark.django_db
def test_a_failure_after_some_requests_keeps_what_was_delivered(company_sync, hubspot, settings):
    settings.MKT_SYNC_BATCH_ATTEMPTS = 2
    CompanyFactory.create_batch(250)  # one task: requests of 100, 100 and 50
    hubspot.fail_next(2, status=503, after=1)  # the second request fails twice

    run = start_and_drive(company_sync)

    assert (run.created, run.failed, run.planned) == (100, 150, 250)
    batch = SyncBatch.objects.get(run=run)
    assert len(batch.record_keys) == 150  # the retry carried only what was left
    assert LedgerEntry.objects.filter(status="synced").count() == 100
    _add_up(run)
    assert start_and_drive(company_sync).created == 150  # and the next run delivers the rest


@pytest.mark.django_db
def test_a_refused_request_in_a_task_is_split_without_resending_the_delivered(
    company_sync, hubspot
):
    CompanyFactory.create_batch(250)
    hubspot.fail_next(
        1,
        status=400,
        after=1,
        body={"status": "error", "message": "bad", "category": "VALIDATION_ERROR"},
    )

    run = start_and_drive(company_sync)

    assert (run.created, run.dead_lettered, run.status) == (250, 0, RunStatus.SUCCEEDED)
    assert max(o["created_count"] for o in hubspot.objects("companies")) == 1
    _add_up(run)


@pytest.mark.django_db
def test_a_record_held_back_as_a_duplicate_stays_held_back_when_it_changes(
    hubspot, hubspot_connection
):
    hubspot.add_property("companies", "web_domain", unique=True)
    sync = make_sync(hubspot_connection, match=("domain", "web_domain"))
    owner = CompanyFactory(domain="same.example")
    start_and_drive(sync)
    copycat = CompanyFactory(domain="same.example", updated_at=timezone.now())
    assert start_and_drive(sync).invalid == 1

    copycat.name = "Copycat renamed"
    copycat.updated_at = timezone.now()
    copycat.save()
    run = start_and_drive(sync)

    assert (run.invalid, run.updated, run.created) == (1, 0, 0)
    stored = hubspot.find("companies", "web_domain", "same.example")
    assert stored["properties"]["name"] == owner.name  # the copycat never overwrote it


@pytest.mark.django_db
def test_delivery_starts_while_the_plan_goes_on_and_counts_still_add_up(
    company_sync, hubspot, monkeypatch
):
    from integrations.engine import runs
    from integrations.engine.runs import batch_execute

    CompanyFactory.create_batch(1200)  # a task's worth is 500 records
    seen_status = []

    def deliver_now(batch_ids, countdown=0):
        for batch_id in batch_ids:
            seen_status.append(SyncRun.objects.get(batches__pk=batch_id).status)
            batch_execute(batch_id=batch_id)

    monkeypatch.setattr(runs, "dispatch_batches", deliver_now)
    run = sync_run_start(sync=company_sync, trigger="manual")
    run_execute(run_id=run.pk)

    run.refresh_from_db()
    assert "planning" in seen_status  # the first tasks ran before the plan was over
    assert (run.status, run.created, run.planned) == (RunStatus.SUCCEEDED, 1200, 1200)
    _add_up(run)


@pytest.mark.django_db
def test_a_run_whose_planner_died_ends_and_a_new_run_plans_again(company_sync, settings):
    settings.MKT_RUN_STALE_SECONDS = 60
    run = sync_run_start(sync=company_sync, trigger="manual")
    SyncRun.objects.filter(pk=run.pk).update(
        status="planning", heartbeat_at=timezone.now() - timedelta(minutes=5)
    )

    runs_reap()

    run.refresh_from_db()
    assert run.status == RunStatus.FAILED and "new run" in run.error
    again = SyncRun.objects.exclude(pk=run.pk).get(sync=company_sync)
    assert (again.status, again.attempt) == (RunStatus.QUEUED, 1)


@pytest.mark.django_db
def test_each_vendor_request_gets_its_own_retry_allowance(hubspot, hubspot_connection, settings):
    """One task sends five requests of 100; each fails once before it succeeds. Five failures
    in all, as many as one request may have: none of the records may end up failed."""
    settings.MKT_SYNC_BATCH_ATTEMPTS = 5
    sync = make_sync(hubspot_connection)
    CompanyFactory.create_batch(500)
    hubspot.fail_next(1, status=502, path_contains="batch/upsert")
    for _ in range(4):  # then: the retry passes, the next request fails once
        hubspot.fail_next(1, status=502, path_contains="batch/upsert", after=1)

    run = start_and_drive(sync)

    assert (run.status, run.created, run.failed) == (RunStatus.SUCCEEDED, 500, 0)
    assert SyncBatch.objects.get(run=run).attempt <= 1
    assert hubspot.pending_faults == 0


@pytest.mark.django_db
def test_a_record_created_by_a_write_whose_answer_was_lost_counts_as_ours(
    hubspot, hubspot_connection
):
    """The write lands at HubSpot and the connection drops: the retry hears "not new", yet the
    vendor's creation time shows our first write made it, so mirror may archive it later."""
    sync = make_sync(
        hubspot_connection, mode="mirror", mirror_max_delete_share=1, filters={"country": "DE"}
    )
    companies = CompanyFactory.create_batch(150, country="DE")
    theirs = CompanyFactory(country="DE")
    hubspot.add_object("companies", {"external_id": theirs.external_id, "name": "theirs"})
    hubspot.drop_next(1, apply_first=True, path_contains="batch/upsert")

    first = start_and_drive(sync)

    assert (first.created, first.updated) == (150, 1), first.counts()
    for company in [*companies, theirs]:
        company.country = "FR"
        company.save()
    second = start_and_drive(sync)

    assert second.deleted == 150
    archived = {
        o["properties"]["external_id"] for o in hubspot.objects("companies") if o["archived"]
    }
    assert archived == {c.external_id for c in companies}  # never the record that was theirs
