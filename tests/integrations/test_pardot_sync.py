"""Contacts to Account Engagement (Pardot) prospects: one upsertLatestByEmail per prospect
with the connection's business unit, opt-outs never undone, and Pardot's codes in the body
(66, 122, 184, 150-154) each doing what VENDORS.md §6 says."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

import pytest

from integrations.connectors import pardot as connector
from integrations.models import (
    Connection,
    DeadLetter,
    LedgerEntry,
    RunStatus,
    Sync,
    SyncBatch,
    SyncRun,
    Trigger,
)
from integrations.services import quota_runs_start, sync_validate
from tests.factories import ConsentRecordFactory
from tests.fakes.pardot import BUSINESS_UNIT_ID
from tests.integrations.conftest import drive, make_sync, start_and_drive
from tests.integrations.contract.profiles.base import consented_contacts
from tests.integrations.contract.profiles.pardot import PardotProfile
from tests.integrations.oauth.conftest import token_calls

pytestmark = pytest.mark.django_db
PROFILE = PardotProfile()
UPSERT = "/do/upsertLatestByEmail"
AFTERNOON = datetime(2026, 12, 1, 15, tzinfo=UTC)
NEXT_DAY = datetime(2026, 12, 2, 0, 1, tzinfo=UTC)  # a minute past UTC midnight
PEOPLE = [("first_name", "firstName"), ("last_name", "lastName")]


@pytest.fixture
def connection(pardot):
    return PROFILE.connection(pardot)


def _sync(connection, mappings=PEOPLE, **kwargs):
    return make_sync(
        connection,
        dataset="contacts",
        obj="prospects",
        mappings=mappings,
        match=("email", "email"),
        consent_purpose="email_marketing",
        **kwargs,
    )


def _limit_body(code: int, message: str = "limit") -> dict:
    return {"code": code, "message": message}


def test_every_prospect_is_upserted_by_email_with_the_business_unit(pardot, connection):
    people = consented_contacts(2)

    run = start_and_drive(_sync(connection))

    assert (run.status, run.created) == (RunStatus.SUCCEEDED, 2), run.counts()
    api = [c for c in pardot.requests if c.path.startswith("/api/v5/")]
    assert {c.header("Pardot-Business-Unit-Id") for c in api} == {BUSINESS_UNIT_ID}
    writes = [c for c in api if c.method == "POST"]
    assert [c.path.rsplit("/", 1)[-1] for c in writes] == ["upsertLatestByEmail"] * 2
    assert sorted(c.body["matchEmail"] for c in writes) == sorted(p.email for p in people)


def test_an_opted_out_prospect_is_never_opted_back_in(pardot, connection):
    [person] = consented_contacts(1, first_name="Olivia")
    pardot.add_prospect(person.email, optedOut=True)
    # A sync that maps consent to the flag would send "not opted out" for a granted consent.
    mappings = [*PEOPLE, ("email_consent", "optedOut")]
    sync = _sync(connection, mappings=[])
    for position, (source, target) in enumerate(mappings):
        sync.mappings.create(
            source_field=source,
            destination_field=target,
            position=position,
            value_map={"granted": "false", "withdrawn": "true"} if target == "optedOut" else {},
        )
    sync_validate(sync, list(sync.mappings.all()))

    run = start_and_drive(sync)

    assert (run.status, run.updated) == (RunStatus.SUCCEEDED, 1), run.counts()
    [write] = pardot.calls(UPSERT)
    assert "optedOut" not in write.body["prospect"]
    prospect = pardot.find(person.email)
    assert prospect["optedOut"] is True and prospect["firstName"] == "Olivia"
    assert pardot.opted_back_in == []


def test_a_withdrawn_consent_opts_the_prospect_out(pardot, connection):
    [person] = consented_contacts(1)
    sync = _sync(connection, mappings=[*PEOPLE, ("email_consent", "optedOut")])
    sync.mappings.filter(destination_field="optedOut").update(
        value_map={"granted": "false", "withdrawn": "true"}
    )
    start_and_drive(sync)
    ConsentRecordFactory(contact=person, status="withdrawn")

    run = start_and_drive(sync, full=True)

    assert (run.status, run.updated) == (RunStatus.SUCCEEDED, 1), run.counts()
    assert pardot.calls(UPSERT)[-1].body["prospect"]["optedOut"] is True
    assert pardot.find(person.email)["optedOut"] is True


def test_code_66_waits_and_sends_again_at_no_attempts_cost(pardot, connection):
    consented_contacts(2)
    pardot.fail_next(1, status=400, body=_limit_body(66), path_contains=UPSERT)

    run = start_and_drive(_sync(connection))

    assert (run.status, run.created, run.failed) == (RunStatus.SUCCEEDED, 2, 0), run.counts()
    assert run.rate_limited == 1
    assert [b.attempt for b in SyncBatch.objects.filter(run=run)] == [0]
    refused, *after = pardot.calls(UPSERT)
    assert refused.status == 400 and len(after) == 2
    assert after[0].timestamp - refused.timestamp >= connector.CONCURRENCY_WAIT * 0.95


def test_code_122_defers_the_records_to_the_next_day_without_failing_them(
    pardot, connection, clock
):
    """Pardot's count is ahead of ours (another integration on the business unit): its 122
    holds the day's quota until UTC midnight, and the records go then."""
    clock.now = AFTERNOON.timestamp()
    people = consented_contacts(4)
    pardot.set_daily_limit(3)  # the fields read and two prospects, then code 122
    sync = _sync(connection)

    first = start_and_drive(sync)

    assert (first.status, first.created, first.deferred, first.failed) == (
        RunStatus.SUCCEEDED,
        2,
        2,
        0,
    ), first.counts()
    assert first.dead_lettered == 0 and pardot.limit_refusals == 1
    waiting = LedgerEntry.objects.filter(sync=sync).exclude(status="synced")
    assert waiting.count() == 2 and "daily limit starts again" in waiting.first().last_error
    resume_at = Sync.objects.get(pk=sync.pk).quota_resume_at
    assert resume_at == NEXT_DAY
    pardot.new_day()
    clock.now = resume_at.timestamp() - 60
    assert quota_runs_start() == 0  # a minute before midnight: nothing yet
    clock.now = resume_at.timestamp()
    assert quota_runs_start() == 1
    second = drive(SyncRun.objects.get(sync=sync, trigger=Trigger.QUOTA, status="queued"))

    assert (second.status, second.created, second.failed) == (RunStatus.SUCCEEDED, 2, 0)
    assert [pardot.create_count(p.email) for p in people] == [1, 1, 1, 1]


def test_a_run_larger_than_the_business_units_allowance_is_cut_to_fit_it(pardot, connection, clock):
    """The connection says its edition's allowance: the plan fits it, never a request over
    it (no code 122), the rest deferred to the next UTC day, each prospect written once."""
    clock.now = AFTERNOON.timestamp()
    quota = 4
    pardot.set_daily_limit(quota)
    Connection.objects.filter(pk=connection.pk).update(daily_quota_requests=quota)
    people = consented_contacts(7)
    sync = _sync(connection)

    runs = [start_and_drive(sync)]
    for _ in range(4):
        resume_at = Sync.objects.get(pk=sync.pk).quota_resume_at
        if resume_at is None:
            break
        pardot.new_day()
        clock.now = resume_at.timestamp()
        assert quota_runs_start() == 1
        runs.append(drive(SyncRun.objects.get(sync=sync, trigger=Trigger.QUOTA, status="queued")))

    assert pardot.limit_refusals == 0  # the plan kept under the allowance: no code 122
    assert 2 <= len(runs) <= 4 and runs[0].deferred > 0
    assert sum(r.created for r in runs) == len(people)
    assert all(r.status == RunStatus.SUCCEEDED and r.failed == 0 for r in runs)
    assert [pardot.create_count(p.email) for p in people] == [1] * len(people)
    calls = [r for r in pardot.requests if r.path.startswith("/api/v5/")]
    per_day = Counter(int(r.timestamp // 86_400) for r in calls)
    assert max(per_day.values()) <= quota, per_day


def test_connections_to_one_business_unit_share_its_daily_quota(pardot, connection):
    from integrations.selectors import connector_for

    other = PROFILE.connection(pardot, name="second pardot connection")

    accounts = {connector_for(c).quota_account() for c in (connection, other)}
    assert accounts == {f"pardot-{BUSINESS_UNIT_ID}"}


def test_the_next_day_is_utc_midnight():
    from datetime import UTC, datetime

    evening = datetime(2026, 12, 1, 23, 0, tzinfo=UTC)

    assert connector.seconds_to_next_day(evening) == 3600 + 60


def test_code_184_in_any_answer_renews_the_token_once_and_sends_again(pardot, connection):
    [person] = consented_contacts(1)
    pardot.fail_next(1, status=400, body=_limit_body(184, "Inactive token"), path_contains=UPSERT)
    before = len(token_calls(pardot, "refresh_token"))

    run = start_and_drive(_sync(connection))

    assert (run.status, run.created) == (RunStatus.SUCCEEDED, 1), run.counts()
    assert len(token_calls(pardot, "refresh_token")) - before == 1
    assert pardot.create_count(person.email) == 1


@pytest.mark.parametrize("code", [150, 154])
def test_a_validation_code_rejects_the_one_prospect_with_pardots_reason(pardot, connection, code):
    people = consented_contacts(2)
    reason = f"Invalid property: jobTitle (code {code} test)"
    pardot.fail_next(1, status=400, body=_limit_body(code, reason), path_contains=UPSERT)

    run = start_and_drive(_sync(connection))

    assert (run.status, run.created, run.dead_lettered) == (RunStatus.PARTIAL, 1, 1), run.counts()
    letter = DeadLetter.objects.get()
    assert reason in letter.error and f"code {code}" in letter.error
    statuses = dict(LedgerEntry.objects.values_list("record_key", "status"))
    assert statuses == {
        str(p.pk): "dead" if str(p.pk) == letter.record_key else "synced" for p in people
    }
    assert len(pardot.calls(UPSERT)) == 2  # refused once, never retried


def test_a_business_unit_pardot_does_not_know_pauses_the_sync_naming_the_setting(pardot):
    foreign = "0Uv000000000009ZZZ"
    connection = PROFILE.connection(pardot)
    connection.config = {"business_unit_id": foreign}
    connection.save()
    consented_contacts(1)
    sync = _sync(connection)

    run = start_and_drive(sync)

    sync.refresh_from_db()
    assert run.status == RunStatus.PAUSED and run.dead_lettered == 0, run.counts()
    assert sync.pause_reason.startswith("config") and f"business_unit_id: {foreign}" in (
        sync.pause_reason
    )


def test_custom_fields_are_listed_with_kinds_and_an_unknown_field_is_refused(pardot, connection):
    from django.core.exceptions import ValidationError

    from integrations.selectors import destination_fields

    pardot.add_custom_field("Seats", "Number")
    pardot.add_custom_field("Interests", "Multi-Select", values=("ads", "seo"))

    fields = {
        f.name: f
        for f in destination_fields(
            connection=connection, object_name="prospects", destination_config={}
        )
    }
    sync = _sync(connection, mappings=[*PEOPLE, ("title", "Favourite_Colour__c")])

    assert (fields["Seats__c"].kind, fields["Interests__c"].kind) == ("number", "choices")
    assert fields["Interests__c"].options == ("ads", "seo")
    assert fields["email"].unique and fields["id"].read_only
    with pytest.raises(ValidationError, match="Favourite_Colour__c"):
        sync_validate(sync, list(sync.mappings.all()))


def test_a_refresh_token_salesforce_refuses_pauses_the_sync_with_a_reconnect_link(
    pardot, connection
):
    consented_contacts(2)
    sync = _sync(connection)
    pardot.oauth.store.revoke_everything()  # the app was removed from the user's access

    run = start_and_drive(sync)

    sync.refresh_from_db()
    assert run.status == RunStatus.PAUSED and "Reconnect" in sync.pause_reason, run.counts()
    [renewal] = token_calls(pardot, "refresh_token")
    assert renewal.response_body["error"] == "invalid_grant"
    assert not LedgerEntry.objects.filter(sync=sync, status="synced").exists()
    assert pardot.prospects() == []
