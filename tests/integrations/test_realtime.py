"""Real-time syncs: a change in the backbone reaches the destination by a run of just that
record, through the same plan, gate, ledger and delivery as any run; changes are coalesced,
a busy sync batches them, the schedule is never starved, and nothing is lost when a run is
taken back (integrations/engine/realtime.py, docs/realtime.md)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from exports.backbone.changes import ChangeEvent
from exports.backbone.models import Company
from exports.backbone.segments import segment_define, segment_members_replace
from integrations.engine.realtime import realtime_dispatch
from integrations.models import RealtimeLag, RealtimePending, RunStatus, Sync, SyncRun
from integrations.services import sync_save
from tests.factories import CompanyFactory, ContactFactory
from tests.integrations.conftest import drive, make_connection, make_sync, start_and_drive

pytestmark = pytest.mark.django_db


def _realtime(sync: Sync, **changes) -> Sync:
    sync.realtime, sync.every_minutes = True, 60
    for name, value in changes.items():
        setattr(sync, name, value)
    return sync_save(sync=sync)


def _tick(seconds: float = 2.0) -> dict:
    """A dispatcher tick this long after now (the window has passed for what changed)."""
    return realtime_dispatch(now=timezone.now() + timedelta(seconds=seconds))


def _latest_run(sync) -> SyncRun:
    return SyncRun.objects.filter(sync=sync).latest("pk")


def _names(hubspot) -> dict[str, str]:
    return {
        o["properties"]["external_id"]: o["properties"]["name"]
        for o in hubspot.objects("companies")
    }


@pytest.fixture
def live_sync(hubspot):
    """A real-time company sync, planned once (its scheduled run made the first plan)."""
    CompanyFactory.create_batch(3)
    sync = _realtime(make_sync(make_connection("hubspot", hubspot)))
    assert start_and_drive(sync).status == RunStatus.SUCCEEDED
    ChangeEvent.objects.all().delete()
    sync.refresh_from_db()
    return sync


def test_a_change_is_sent_by_a_run_of_just_that_record(hubspot, live_sync):
    company = Company.objects.order_by("pk").first()
    watermark = live_sync.source_watermark
    company.name, company.updated_at = "Renamed Ltd", timezone.now()
    company.save()

    assert _tick()["runs"] == 1
    run = drive(_latest_run(live_sync))

    assert (run.trigger, run.status, run.planned, run.updated) == (
        "realtime",
        "succeeded",
        1,
        0 + 1,
    )
    assert list(run.targets) == [str(company.pk)]
    assert _names(hubspot)[company.external_id] == "Renamed Ltd"
    # The scheduled run still reads every change since its own last plan.
    live_sync.refresh_from_db()
    assert live_sync.source_watermark == watermark
    lag = RealtimeLag.objects.get(run=run)
    assert lag.record_key == str(company.pk) and 0 <= lag.seconds < 60


def test_changes_wait_for_the_window_and_are_coalesced(live_sync, settings):
    settings.MKT_REALTIME_WINDOW_SECONDS = 30
    company = Company.objects.order_by("pk").first()
    for name in ("One", "Two", "Three"):
        Company.objects.filter(pk=company.pk).update(name=name, updated_at=timezone.now())

    assert _tick(seconds=1) == {"changes": 3, "pending": 1, "runs": 0}  # within the window
    waiting = RealtimePending.objects.get(sync=live_sync)
    assert waiting.record_key == str(company.pk)
    first_change = waiting.event_at
    Company.objects.filter(pk=company.pk).update(name="Four", updated_at=timezone.now())

    assert _tick(seconds=31)["runs"] == 1
    run = _latest_run(live_sync)
    assert list(run.targets) == [str(company.pk)]
    assert run.targets[str(company.pk)] == first_change.isoformat()  # the earliest time kept
    assert not RealtimePending.objects.exists()


def test_a_busy_sync_batches_its_changes_and_its_schedule_waits_its_turn(hubspot, live_sync):
    from integrations.tasks import run_schedule_task

    companies = list(Company.objects.order_by("pk"))
    Company.objects.filter(pk=companies[0].pk).update(name="A", updated_at=timezone.now())
    _tick()
    going = _latest_run(live_sync)
    Company.objects.filter(pk=companies[1].pk).update(name="B", updated_at=timezone.now())
    Company.objects.filter(pk=companies[2].pk).update(name="C", updated_at=timezone.now())
    run_schedule_task(sync_id=live_sync.pk)  # finds the sync busy

    assert _tick()["runs"] == 0  # one run at a time: the two changes wait together
    assert RealtimePending.objects.filter(sync=live_sync).count() == 2
    drive(going)
    assert _tick()["runs"] == 1
    scheduled = drive(_latest_run(live_sync))

    # The scheduled run went first, and took the waiting records with it.
    assert scheduled.trigger == "schedule" and scheduled.status == "succeeded"
    assert set(scheduled.targets) == {str(companies[1].pk), str(companies[2].pk)}
    assert {n for n in _names(hubspot).values()} == {"A", "B", "C"}
    live_sync.refresh_from_db()
    assert not live_sync.schedule_waiting


def test_a_contacts_sync_hears_its_contacts_companies(hubspot):
    company = CompanyFactory(name="Old Name")
    people = ContactFactory.create_batch(2, company=company)
    ContactFactory()  # another company's
    sync = make_sync(
        make_connection("hubspot", hubspot),
        dataset="contacts",
        obj="contacts",
        mappings=[("email", "email"), ("company_name", "company")],
        match=("email", "email"),
        consent_purpose="email_marketing",
    )
    _realtime(sync)
    start_and_drive(sync)
    ChangeEvent.objects.all().delete()

    Company.objects.filter(pk=company.pk).update(name="New Name", updated_at=timezone.now())
    _tick()

    assert set(_latest_run(sync).targets) == {str(p.pk) for p in people}


def test_a_member_leaving_the_segment_of_a_mirror_sync_is_archived(hubspot):
    companies = CompanyFactory.create_batch(4)
    vip = segment_define(key="vip", name="VIP", subject="company")
    segment_members_replace(segment=vip, subject_ids=[c.pk for c in companies])
    sync = make_sync(make_connection("hubspot", hubspot), filters={"segment": "vip"}, mode="mirror")
    _realtime(sync, mirror_max_delete_share=0.5)
    start_and_drive(sync)

    segment_members_replace(segment=vip, subject_ids=[c.pk for c in companies[1:]])
    _tick()
    run = drive(_latest_run(sync))

    assert (run.trigger, run.deleted) == ("realtime", 1)
    archived = {
        o["properties"]["external_id"] for o in hubspot.objects("companies") if o["archived"]
    }
    assert archived == {companies[0].external_id}

    # Leavers archived by many small runs count together against the guard: a second and a
    # third leaver would be 3 of 4 (more than half) and are refused.
    segment_members_replace(segment=vip, subject_ids=[companies[3].pk])
    _tick()
    guarded = drive(_latest_run(sync))
    assert (guarded.deleted, guarded.blocked) == (0, 2)
    assert "Mirror delete guard" in guarded.error


def test_a_new_sync_gets_a_whole_plan_not_a_run_of_its_changes(hubspot):
    CompanyFactory.create_batch(3)
    sync = _realtime(make_sync(make_connection("hubspot", hubspot)))
    Company.objects.filter(pk=Company.objects.order_by("pk").first().pk).update(name="X")

    _tick()
    run = drive(_latest_run(sync))

    assert run.created == 3  # every record, and the watermark is set for the schedule
    sync.refresh_from_db()
    assert sync.source_watermark is not None and sync.planned_config_version == sync.config_version


def test_a_run_taken_back_keeps_its_records(live_sync, settings):
    from integrations.engine.runs import MAX_RUN_ATTEMPTS, runs_reap

    company = Company.objects.order_by("pk").first()
    Company.objects.filter(pk=company.pk).update(name="Lost?", updated_at=timezone.now())
    _tick()
    stale = timezone.now() - timedelta(seconds=settings.MKT_RUN_STALE_SECONDS + 60)
    for attempt in range(MAX_RUN_ATTEMPTS):
        run = _latest_run(live_sync)
        assert run.attempt == attempt and list(run.targets) == [str(company.pk)]
        # Its worker died while planning.
        SyncRun.objects.filter(pk=run.pk).update(status="planning", heartbeat_at=stale)
        runs_reap()

    # Out of attempts: the record waits for the next real-time run, with its change time.
    waiting = RealtimePending.objects.get(sync=live_sync)
    assert waiting.record_key == str(company.pk)
    assert waiting.event_at.isoformat() == run.targets[str(company.pk)]


def test_a_real_time_sync_needs_a_schedule(hubspot):
    sync = make_sync(make_connection("hubspot", hubspot))
    sync.realtime = True

    with pytest.raises(ValidationError) as caught:
        sync_save(sync=sync)

    assert "needs a schedule" in str(caught.value.message_dict["realtime"])


def test_changes_of_paused_syncs_are_not_announced(live_sync):
    from integrations.services import sync_set_paused

    sync_set_paused(sync=live_sync, paused=True)
    Company.objects.filter(pk=Company.objects.first().pk).update(name="Paused")

    assert ChangeEvent.objects.count() == 0
    assert _tick()["runs"] == 0


def test_the_objective_of_a_real_time_sync_is_measured_from_its_events(live_sync):
    """The dashboard's p95: from the change event's time to the destination's answer, even
    for a row whose own updated_at says nothing (another service changed it)."""
    from exports.backbone.changes import Change, change_events_record
    from integrations.operations.slo import event_to_action

    company = Company.objects.order_by("pk").first()
    Company.objects.filter(pk=company.pk).update(
        name="Told", updated_at=timezone.now() - timedelta(days=30)
    )
    ChangeEvent.objects.all().delete()
    change_events_record([Change("company", company.pk, timezone.now() - timedelta(seconds=7))])
    _tick(seconds=0)
    drive(_latest_run(live_sync))

    latency = event_to_action(Sync.objects.all())["by_sync"][live_sync.pk]

    assert latency.records == 1
    assert 7 <= latency.p95_seconds < 60


def test_latency_rows_are_kept_thirty_days(live_sync):
    from integrations.tasks import realtime_lag_prune_task

    run = SyncRun.objects.filter(sync=live_sync).latest("pk")
    now = timezone.now()
    for key, age in (("old", 31), ("recent", 29)):
        at = now - timedelta(days=age)
        RealtimeLag.objects.create(
            sync=live_sync, run=run, record_key=key, event_at=at, confirmed_at=at, seconds=1.0
        )

    assert realtime_lag_prune_task() == 1
    assert list(RealtimeLag.objects.values_list("record_key", flat=True)) == ["recent"]
