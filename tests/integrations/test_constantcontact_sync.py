"""What is Constant Contact's own, beyond the contract suite: an unsubscribed contact is never
opted back in, the sync's lists must be the account's, Connect is PKCE with the client as HTTP
Basic, each renewal stores the rotated refresh token, refused rows are told from delivered ones,
and a run three times the daily quota completes over three days (a fake clock).

Constant Contact's refresh tokens rotate, and a rotating token is never renewed inside a
transaction (ADR 0007): these tests run without pytest-django's wrapping transaction."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from django.core.exceptions import ValidationError

from exports.backbone.models import ConsentRecord, Contact
from integrations.models import DeadLetter, LedgerEntry, RunStatus, Sync, SyncRun, Trigger
from integrations.services import quota_runs_start, sync_run_start, sync_validate
from tests.factories import CompanyFactory, ConsentRecordFactory, ContactFactory
from tests.fakes.constantcontact import IMPORT_PATH, NEWSLETTER_LIST_ID
from tests.integrations.conftest import drive, make_sync, start_and_drive
from tests.integrations.contract.profiles.base import consented_contacts
from tests.integrations.contract.profiles.constantcontact import ConstantContactProfile
from tests.integrations.oauth.conftest import token_calls

pytestmark = pytest.mark.django_db(transaction=True)
PROFILE = ConstantContactProfile()
PEOPLE = [("first_name", "first_name"), ("last_name", "last_name"), ("title", "job_title")]


def contacts_sync(server, *, list_ids=(NEWSLETTER_LIST_ID,), **connection) -> Sync:
    return make_sync(
        PROFILE.connection(server, **connection),
        dataset="contacts",
        obj="contacts",
        mappings=PEOPLE,
        match=("email", "email"),
        consent_purpose="email_marketing",
        destination_config={"list_ids": list(list_ids)},
    )


def imported_rows(server) -> list[dict]:
    return [row for call in server.imports() for row in call.body["import_data"]]


def test_an_unsubscribed_contact_is_never_opted_back_in(constantcontact):
    [ann] = consented_contacts(1, first_name="Ann")
    constantcontact.add_contact(ann.email, permission="unsubscribed", first_name="Old")
    sync = contacts_sync(constantcontact)

    run = start_and_drive(sync)

    assert (run.status, run.updated, run.created) == (RunStatus.SUCCEEDED, 1, 0), run.counts()
    stored = constantcontact.contact(ann.email)
    assert stored["first_name"] == "Ann"  # the sync's data arrived ...
    assert stored["permission_to_send"] == "unsubscribed"  # ... and the opt-out stands
    assert not any("permission" in key for row in imported_rows(constantcontact) for key in row)
    assert constantcontact.violations == []


def test_a_list_the_account_does_not_have_is_refused_with_the_accounts_lists(constantcontact):
    sync = contacts_sync(constantcontact, list_ids=["0a0a0a0a-0000-0000-0000-000000000000"])

    with pytest.raises(ValidationError) as refused:
        sync_validate(sync, list(sync.mappings.all()))

    message = " ".join(refused.value.messages)
    assert "no list 0a0a0a0a-0000-0000-0000-000000000000" in message
    assert f"Newsletter ({NEWSLETTER_LIST_ID})" in message


def test_a_refused_row_is_dead_lettered_with_its_reason_and_the_rest_arrive(constantcontact):
    good, bad = consented_contacts(2)
    constantcontact.reject_email(bad.email, "The mailbox does not exist")
    sync = contacts_sync(constantcontact)

    run = start_and_drive(sync)

    assert (run.status, run.created, run.dead_lettered) == (RunStatus.PARTIAL, 1, 1), run.counts()
    letter = DeadLetter.objects.get(sync=sync)
    assert letter.record_key == str(bad.pk) and "The mailbox does not exist" in letter.error
    assert constantcontact.contact(good.email) is not None
    assert constantcontact.contact(bad.email) is None
    entry = LedgerEntry.objects.get(sync=sync, record_key=str(good.pk))
    assert entry.destination_id == constantcontact.contact(good.email)["contact_id"]


def test_an_import_that_fails_as_a_whole_is_sent_again_and_nothing_is_lost(constantcontact):
    people = consented_contacts(3)
    constantcontact.fail_activity_next(1, "The import could not be processed")
    sync = contacts_sync(constantcontact)

    run = start_and_drive(sync)
    if run.status != RunStatus.SUCCEEDED:  # the retry's back-off may outlast this run
        run = start_and_drive(sync)

    assert run.status == RunStatus.SUCCEEDED, run.counts()
    assert len(constantcontact.imports()) == 2
    assert {constantcontact.create_count(p.email) for p in people} == {1}
    assert LedgerEntry.objects.filter(sync=sync, status="synced").count() == 3


def test_each_renewal_stores_the_rotated_refresh_token_before_the_old_one_is_reused(
    constantcontact,
):
    sync = contacts_sync(constantcontact)
    for round_ in range(2):
        consented_contacts(1)
        constantcontact.oauth.store.expire_access_tokens()  # ended at Constant Contact
        run = start_and_drive(sync, full=True)  # the factory's contacts share one change time
        assert (run.status, run.created) == (RunStatus.SUCCEEDED, 1), (round_, run.counts())

    refreshes = token_calls(constantcontact, "refresh_token")
    assert [call.status for call in refreshes] == [200, 200]
    # The second renewal used the token the first one answered (the first is dead by then).
    assert refreshes[1].body["refresh_token"] == refreshes[0].response_body["refresh_token"]
    assert "client_secret" not in refreshes[0].body  # the client goes as HTTP Basic
    stored = Sync.objects.get(pk=sync.pk).connection.get_credentials()["refresh_token"]
    assert stored == refreshes[1].response_body["refresh_token"]
    assert constantcontact.violations == []


QUOTA = 7  # requests a day: lists and custom fields, then one import of 1,000 (five at most)
PER_DAY = 1_000
NOON = datetime(2026, 3, 11, 12, tzinfo=UTC)
MIDNIGHT = datetime(2026, 3, 12, tzinfo=UTC)


def _people(n: int) -> list[Contact]:
    """``n`` consented contacts, the first made changed first (oldest change first)."""
    start = datetime(2026, 3, 1, tzinfo=UTC)
    company = CompanyFactory()
    Contact.objects.bulk_create(
        ContactFactory.build(
            company=company, email=f"q{i:05d}@example.com", updated_at=start + timedelta(seconds=i)
        )
        for i in range(n)
    )
    people = list(Contact.objects.order_by("updated_at", "id"))
    ConsentRecord.objects.bulk_create(ConsentRecordFactory.build(contact=p) for p in people)
    return people


def test_a_run_three_times_the_daily_quota_completes_over_three_days(constantcontact, clock):
    clock.now = NOON.timestamp()
    constantcontact.set_daily_limit(QUOTA)
    constantcontact.account.job_seconds = 0  # each import has run by the first look
    # The clock stands still between the test's moves, so no per-second window would ever
    # free a slot: this test is about the day's allowance, and sends seven requests a day.
    constantcontact.clear_rate_limit()
    people = _people(3 * PER_DAY)
    sync = contacts_sync(constantcontact, daily_quota_requests=QUOTA, rate_limit_requests=10_000)

    runs = [drive(sync_run_start(sync=sync, trigger="manual"), clock=clock)]
    for day in (1, 2):
        resume = Sync.objects.get(pk=sync.pk).quota_resume_at
        assert resume == MIDNIGHT + timedelta(days=day - 1)
        clock.now = resume.timestamp() - 60
        assert quota_runs_start() == 0  # a minute before midnight UTC: nothing yet
        clock.now = resume.timestamp()
        assert quota_runs_start() == 1
        queued = SyncRun.objects.get(sync=sync, trigger=Trigger.QUOTA, status="queued")
        runs.append(drive(queued, clock=clock))

    assert [(r.status, r.failed) for r in runs] == [(RunStatus.SUCCEEDED, 0)] * 3, [
        sorted(r.counts().items()) for r in runs
    ]
    assert [r.created for r in runs] == [PER_DAY] * 3, [sorted(r.counts().items()) for r in runs]
    assert [r.deferred for r in runs] == [2 * PER_DAY, PER_DAY, 0]
    assert constantcontact.daily_refused == 0  # never a request over the quota
    calls = [r for r in constantcontact.requests if r.path.startswith("/v3/")]
    per_day = Counter(int(r.timestamp // 86_400) for r in calls)
    assert len(per_day) == 3 and max(per_day.values()) <= QUOTA, per_day
    sent = [row["email"] for row in imported_rows(constantcontact)]
    assert sorted(sent) == sorted(p.email for p in people)  # each exactly once
    first_day = {row["email"] for row in constantcontact.imports()[0].body["import_data"]}
    assert first_day == {p.email for p in people[:PER_DAY]}  # the oldest changes first
    assert LedgerEntry.objects.filter(sync=sync, status="synced").count() == 3 * PER_DAY
    assert constantcontact.violations == []


def test_writes_go_to_the_import_activity_only(constantcontact):
    """No other write could set permission: no sign_up_form, no single-contact POST."""
    consented_contacts(2)
    start_and_drive(contacts_sync(constantcontact))

    writes = {c.path for c in constantcontact.requests if c.method in ("POST", "PUT", "PATCH")}
    assert writes <= {IMPORT_PATH, "/oauth2/default/v1/token"}, writes


def test_a_batch_needing_more_imports_than_it_can_follow_goes_in_halves(
    constantcontact, monkeypatch
):
    """A batch whose contacts need more imports than its job reference can name is halved
    before anything is sent: every contact arrives once, no batch loses track of an import."""
    from integrations.connectors.constantcontact import connector

    monkeypatch.setattr(connector, "IMPORT_BYTES", 300)  # two or three contacts an import
    people = consented_contacts(40)

    run = start_and_drive(contacts_sync(constantcontact))

    assert (run.status, run.created, run.dead_lettered) == (RunStatus.SUCCEEDED, 40, 0)
    rows = imported_rows(constantcontact)
    assert sorted(row["email"] for row in rows) == sorted(p.email for p in people)
    refs = [b.job_ref for b in run.batches.exclude(job_ref="")]
    assert refs and all(len(ref.split(",")) <= connector.MAX_IMPORTS for ref in refs)
    assert run.batches.filter(splits__gt=0).exists()  # the first batch was halved


def test_an_opt_out_throttled_by_constant_contact_is_sent_again_after_the_wait(constantcontact):
    from integrations.connectors.base import Outcome, OutRecord
    from integrations.selectors import connector_for

    [ann] = consented_contacts(1)
    sync = contacts_sync(constantcontact)
    start_and_drive(sync)
    entry = LedgerEntry.objects.get(sync=sync)
    constantcontact.fail_next(
        1, status=429, headers={"Retry-After": "1"}, path_contains="/contacts"
    )

    record = OutRecord(entry.record_key, entry.match_value, {}, entry.destination_id, True)
    [result] = connector_for(sync.connection).suppress(
        "contacts", [record], destination_config=sync.destination_config
    )

    assert result.outcome == Outcome.UPDATED
    assert constantcontact.contact(ann.email)["permission_to_send"] == "unsubscribed"
