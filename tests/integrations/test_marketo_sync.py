"""Marketo beyond the contract suite: its errors inside HTTP 200 bodies, each by kind (601/602
buy a token again once, 606/615 wait, 607 stops for the day, 1018 pauses, per-record skips
1003/1004/1006/1007 are rejected with Marketo's reason),
its limits (1 MB bodies, 8 KB URIs, ASCII e-mail addresses), the Munchkin host per connection,
and mappings Marketo cannot take refused before anything is sent."""

from datetime import UTC, datetime

import pytest
from django.core.exceptions import ValidationError

from integrations.connectors.marketo import MarketoConfig
from integrations.engine.runs import batch_execute, run_execute
from integrations.models import (
    Connection,
    DeadLetter,
    FieldMapping,
    LedgerEntry,
    RunStatus,
    Sync,
    SyncBatch,
)
from integrations.selectors import connector_for
from integrations.services import sync_run_start, sync_save, sync_set_paused
from tests.factories import CompanyFactory, ConsentRecordFactory, ContactFactory
from tests.fakes import marketo_errors
from tests.integrations.conftest import make_sync, start_and_drive

pytestmark = pytest.mark.django_db
LEADS = [("first_name", "firstName"), ("last_name", "lastName"), ("company_name", "company")]
COMPANIES = [("name", "company"), ("employees", "numberOfEmployees")]


def _contacts(n, **attrs):
    contacts = ContactFactory.create_batch(n, **attrs)
    for contact in contacts:
        ConsentRecordFactory(contact=contact, status="granted")
    return contacts


def _lead_sync(connection, mappings=LEADS, **kwargs):
    return make_sync(
        connection,
        dataset="contacts",
        obj="leads",
        mappings=mappings,
        match=("email", "email"),
        consent_purpose="email_marketing",
        **kwargs,
    )


def _company_sync(connection, **kwargs):
    return make_sync(
        connection,
        obj="companies",
        mappings=COMPANIES,
        match=("external_id", "externalCompanyId"),
        **kwargs,
    )


def _writes(server, obj="leads"):
    return server.calls(f"/rest/v1/{obj}.json", method="POST")


def test_sync_leads_sends_the_modes_action_and_the_match_field_as_lookup_field(
    marketo_connection, marketo
):
    _contacts(2)
    for mode, action in (
        ("upsert", "createOrUpdate"),
        ("update_only", "updateOnly"),
        ("create_only", "createOnly"),
    ):
        start_and_drive(_lead_sync(marketo_connection, mode=mode))
        assert _writes(marketo)[-1].body["action"] == action
    assert {w.body["lookupField"] for w in _writes(marketo)} == {"email"}
    assert all("partitionName" not in w.body for w in _writes(marketo))


@pytest.mark.parametrize(
    ("code", "wait"),
    [("606", 20), ("615", 5)],
    ids=["606 over 100 calls in 20 s", "615 over 10 calls at once"],
)
def test_a_606_or_615_holds_the_instance_and_the_batch_waits_at_no_attempt(
    marketo_connection, marketo, clock, code, wait
):
    clock.now = datetime(2026, 3, 11, 12, tzinfo=UTC).timestamp()
    _contacts(2)
    marketo.fail_next(1, status=200, body=marketo_errors.failure(code).body)
    run = sync_run_start(sync=_lead_sync(marketo_connection), trigger="manual")
    run_execute(run_id=run.pk)
    batch = SyncBatch.objects.get(run=run)

    batch_execute(batch_id=batch.pk)

    batch.refresh_from_db()
    assert (batch.status, batch.attempt) == ("queued", 0)
    assert batch.not_before == datetime(2026, 3, 11, 12, 0, wait, tzinfo=UTC)
    clock.advance(wait - 2)
    batch_execute(batch_id=batch.pk)  # too early: the engine does not claim it
    assert len(_writes(marketo)) == 1
    clock.advance(2)
    batch_execute(batch_id=batch.pk)
    run.refresh_from_db()
    assert (run.status, run.created, run.rate_limited) == (RunStatus.SUCCEEDED, 2, 1)


def test_a_607_stops_for_the_day_defers_the_records_and_asks_marketo_nothing_more(
    marketo_connection, marketo, clock
):
    clock.now = datetime(2026, 3, 11, 12, tzinfo=UTC).timestamp()  # 06:00 CST
    _contacts(3)
    sync = _lead_sync(marketo_connection)
    marketo.fail_next(1, status=200, body=marketo_errors.failure("607").body)

    run = start_and_drive(sync)

    assert (run.status, run.deferred, run.failed, run.dead_lettered) == (
        RunStatus.SUCCEEDED,
        3,
        0,
        0,
    )
    midnight_cst = datetime(2026, 3, 12, 6, tzinfo=UTC)
    assert Sync.objects.get(pk=sync.pk).quota_resume_at == midnight_cst
    entry = LedgerEntry.objects.filter(sync=sync).first()
    assert "607 Daily quota reached" in entry.last_error
    assert "2026-03-12 06:00 UTC" in entry.last_error
    requests_before = len(marketo.requests)
    assert start_and_drive(sync).deferred == 3  # the plan defers them, asking nothing
    assert [r.path for r in marketo.requests[requests_before:]] == []
    clock.now = midnight_cst.timestamp()
    again = start_and_drive(sync)
    assert (again.created, again.deferred) == (3, 0)


@pytest.mark.parametrize("code", ["601", "602"], ids=["601 token invalid", "602 token expired"])
def test_a_token_marketo_refuses_is_bought_again_once_and_the_run_delivers(
    marketo_connection, marketo, code
):
    _contacts(3)
    sync = _lead_sync(marketo_connection)
    connector_for(marketo_connection).test_connection()  # a token bought and in use
    bought = len(marketo.token_requests())
    marketo.fail_next(1, status=200, body=marketo_errors.failure(code).body)

    run = start_and_drive(sync)

    assert (run.status, run.created, run.failed) == (RunStatus.SUCCEEDED, 3, 0), run.counts()
    assert len(marketo.token_requests()) == bought + 1
    assert [w.response_body["success"] for w in _writes(marketo)] == [False, True]


@pytest.mark.parametrize("code", ["601", "602"])
def test_a_token_refused_again_after_renewal_pauses_the_sync_and_loses_nothing(
    marketo_connection, marketo, code
):
    _contacts(3)
    sync = _lead_sync(marketo_connection)
    connector_for(marketo_connection).test_connection()  # a token bought and in use
    bought = len(marketo.token_requests())
    marketo.fail_next(2, status=200, body=marketo_errors.failure(code).body)

    run = start_and_drive(sync)

    sync.refresh_from_db()
    assert (run.status, run.failed, run.dead_lettered) == (RunStatus.PAUSED, 3, 0), run.counts()
    assert sync.paused and code in sync.pause_reason
    assert len(marketo.token_requests()) == bought + 1  # renewed once, not in a loop
    assert len(_writes(marketo)) == 2
    sync_set_paused(sync=sync, paused=False)
    assert start_and_drive(sync).created == 3


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("1003", "Value for field 'company' is locked by a CRM sync rule"),
        ("1004", "Lead not found"),
        ("1006", "Field 'firstName' not found"),
    ],
)
def test_a_skipped_lead_is_dead_lettered_with_marketos_code_and_reason(
    marketo_connection, marketo, code, message
):
    kept, skipped = _contacts(2)
    marketo.reject_values("lead", "email", skipped.email, code, message)
    sync = _lead_sync(marketo_connection)

    run = start_and_drive(sync)

    assert (run.status, run.created, run.dead_lettered) == (RunStatus.PARTIAL, 1, 1), run.counts()
    letter = DeadLetter.objects.get(sync=sync)
    assert (letter.record_key, letter.error_code) == (str(skipped.pk), code)
    assert letter.error == f"Marketo {code}: {message}"
    assert marketo.find("lead", "email", kept.email) is not None
    assert marketo.find("lead", "email", skipped.email) is None


def test_update_only_leaves_a_lead_marketo_does_not_have_unchanged_not_rejected(
    marketo_connection, marketo
):
    existing, missing = _contacts(2)
    marketo.add_record("lead", {"email": existing.email}, match="email")

    run = start_and_drive(_lead_sync(marketo_connection, mode="update_only"))

    assert (run.updated, run.unchanged, run.dead_lettered) == (1, 1, 0), run.counts()
    [write] = _writes(marketo)
    assert [r["status"] for r in write.response_body["result"]][1] == "skipped"
    assert marketo.find("lead", "email", missing.email) is None


def test_a_field_gone_at_marketo_is_a_per_record_rejection_with_marketos_reason(
    marketo_connection, marketo
):
    marketo.add_lead_field("favouriteColour")
    contacts = _contacts(2)
    sync = _lead_sync(marketo_connection, mappings=[*LEADS, ("title", "favouriteColour")])
    with marketo._lock:  # someone deletes the field at Marketo after the sync was saved
        del marketo.store("lead").fields["favouriteColour"]

    run = start_and_drive(sync)

    assert (run.status, run.dead_lettered, run.failed) == (RunStatus.PARTIAL, 2, 0), run.counts()
    letters = DeadLetter.objects.filter(sync=sync)
    assert {(d.record_key, d.error_code) for d in letters} == {
        (str(c.pk), "1006") for c in contacts
    }
    assert {d.error for d in letters} == {"Marketo 1006: Field 'favouriteColour' not found"}
    assert len(_writes(marketo)) == 1  # one request, refused record by record


def test_several_leads_matching_one_email_is_a_per_record_rejection(marketo_connection, marketo):
    _, doubled = _contacts(2)
    marketo.add_record("lead", {"email": doubled.email}, match="email")
    marketo.add_record("lead", {"email": doubled.email.upper()}, match="email")
    sync = _lead_sync(marketo_connection)

    run = start_and_drive(sync)

    assert (run.created, run.dead_lettered) == (1, 1), run.counts()
    letter = DeadLetter.objects.get(sync=sync)
    assert (letter.record_key, letter.error_code) == (str(doubled.pk), "1007")
    assert "several" in letter.error.lower() or "multiple" in letter.error.lower()


def test_companies_read_only_under_crm_sync_pause_the_sync_and_lose_nothing(
    marketo_connection, marketo
):
    CompanyFactory.create_batch(2)
    sync = _company_sync(marketo_connection)
    marketo.set_crm_enabled()

    run = start_and_drive(sync)

    sync.refresh_from_db()
    assert (run.status, run.failed, run.dead_lettered) == (RunStatus.PAUSED, 2, 0)
    assert sync.paused and "1018 CRM Enabled" in sync.pause_reason
    assert not LedgerEntry.objects.filter(sync=sync, status="synced").exists()


def test_companies_are_synced_by_external_company_id_with_dedupe_fields(
    marketo_connection, marketo
):
    companies = CompanyFactory.create_batch(3)
    sync = _company_sync(marketo_connection)

    run = start_and_drive(sync)

    assert run.created == 3
    [write] = _writes(marketo, "companies")
    assert (write.body["action"], write.body["dedupeBy"]) == ("createOrUpdate", "dedupeFields")
    stored = marketo.find("company", "externalCompanyId", companies[0].external_id)
    assert (stored["company"], stored["numberOfEmployees"]) == (companies[0].name, 120)
    entries = LedgerEntry.objects.filter(sync=sync).values_list("destination_id", flat=True)
    assert set(entries) == {
        str(marketo.find("company", "externalCompanyId", c.external_id)["id"]) for c in companies
    }


def test_a_request_over_1_mb_is_split_so_that_marketo_takes_it(marketo_connection, marketo):
    marketo.add_lead_field("notes", "text")
    _contacts(300, title="x" * 100)
    sync = _lead_sync(marketo_connection)
    # A text field of 4,200 characters per lead (the source's title is at most 150): 300 leads
    # are 1.3 MB in one request.
    FieldMapping.objects.create(sync=sync, template="{title}" * 42, destination_field="notes")

    run = start_and_drive(sync)

    assert (run.status, run.created) == (RunStatus.SUCCEEDED, 300)
    sizes = [len(w.body["input"]) for w in _writes(marketo)]
    assert sizes == [150, 150]
    assert all(w.status == 200 for w in _writes(marketo))


def test_a_look_up_of_300_long_addresses_keeps_each_uri_under_8_kb(marketo_connection, marketo):
    emails = [f"somebody.with.a.long.name.number{i:04d}@example-company.com" for i in range(300)]
    for email in emails[::2]:
        marketo.add_record("lead", {"email": email}, match="email")

    found = connector_for(marketo_connection).lookup(
        "leads", emails, match_field="email", destination_config={}
    )

    assert set(found) == set(emails[::2])
    lookups = marketo.calls("/rest/v1/leads.json", method="GET")
    assert len(lookups) > 1 and all(call.status == 200 for call in lookups)


def test_a_non_ascii_email_is_invalid_at_plan_time_and_costs_no_request(
    marketo_connection, marketo
):
    _contacts(1)
    [umlaut] = _contacts(1, email="jürgen@example.com")
    sync = _lead_sync(marketo_connection)

    run = start_and_drive(sync)

    assert (run.created, run.invalid, run.dead_lettered) == (1, 1, 0)
    entry = LedgerEntry.objects.get(sync=sync, record_key=str(umlaut.pk))
    assert "Marketo takes ASCII e-mail addresses only" in entry.last_error
    assert [len(w.body["input"]) for w in _writes(marketo)] == [1]


def test_a_mapping_to_a_field_marketo_does_not_have_is_refused_with_its_fields(
    marketo_connection, marketo
):
    sync = Sync(
        name="leads",
        connection=marketo_connection,
        dataset="contacts",
        destination_object="leads",
        match_source_field="email",
        match_destination_field="email",
        consent_purpose="email_marketing",
    )
    mappings = [
        FieldMapping(source_field="first_name", destination_field="firstName"),
        FieldMapping(source_field="title", destination_field="jobTitle"),
        FieldMapping(source_field="last_name", destination_field="updatedAt"),
    ]

    with pytest.raises(ValidationError) as refused:
        sync_save(sync=sync, mappings=mappings)

    messages = refused.value.message_dict["mappings"]
    assert messages[0].startswith("mapping 2: 'jobTitle' does not exist at Marketo (leads)")
    assert "fields include: " in messages[0] and "title" in messages[0]
    assert "firstName" in messages[0] and "numberOfEmployees" in messages[0]
    assert messages[1] == "mapping 3: 'updatedAt' is read-only at the destination"
    assert not Sync.objects.exists()
    assert _writes(marketo) == []


def test_a_text_value_for_a_marketo_number_field_is_refused_at_mapping_time(
    marketo_connection, marketo
):
    sync = Sync(
        name="companies",
        connection=marketo_connection,
        dataset="clients",
        destination_object="companies",
        match_source_field="external_id",
        match_destination_field="externalCompanyId",
    )

    with pytest.raises(ValidationError, match="numberOfEmployees at Marketo takes a number"):
        sync_save(
            sync=sync,
            mappings=[FieldMapping(source_field="city", destination_field="numberOfEmployees")],
        )


def test_each_connection_reaches_its_own_instance_by_its_munchkin_id():
    connection = Connection(
        name="acme",
        vendor="marketo",
        auth_kind="client_credentials",
        config={"munchkin_id": "284-RPR-133"},
    )
    connector = connector_for(connection)

    assert connector.url("/v1/leads.json") == "https://284-rpr-133.mktorest.com/rest/v1/leads.json"
    assert connector.quota_account() == "284-RPR-133"
    with pytest.raises(ValueError, match="'284RPR133' is not a Munchkin id"):
        MarketoConfig.from_dict({"munchkin_id": "284RPR133"})
    connection.config = {"munchkin_id": "nope"}
    with pytest.raises(ValidationError, match="is not a Munchkin id"):
        connection.full_clean()


def test_the_identity_endpoint_is_the_instances_and_takes_no_secret_in_a_body(
    marketo_connection, marketo
):
    connector_for(marketo_connection).test_connection()

    [bought] = marketo.token_requests()
    assert bought.method == "POST" and bought.body is None
    assert set(bought.query) == {"grant_type", "client_id", "client_secret"}
    assert all(
        r.headers.get("Authorization") == "***" and "access_token" not in r.query
        for r in marketo.requests
        if r.path.startswith("/rest/")
    )


def test_a_token_is_used_to_its_end_then_bought_again_once(marketo_connection, marketo, clock):
    connector_for(marketo_connection).test_connection()
    clock.advance(3590)  # ten seconds left: Marketo would only give the same token again [K2]
    connector_for(marketo_connection).test_connection()
    assert len(marketo.token_requests()) == 1
    clock.advance(20)  # expired

    connector_for(marketo_connection).test_connection()

    assert len(marketo.token_requests()) == 2
    assert [c.status for c in marketo.calls("/rest/v1/stats/usage.json")] == [200, 200, 200]
    assert all(c.response_body["success"] for c in marketo.calls("/rest/v1/stats/usage.json"))


def test_the_connection_test_reads_the_instances_daily_usage_into_the_quota(
    marketo_connection, marketo, clock
):
    clock.now = datetime(2026, 3, 11, 12, tzinfo=UTC).timestamp()
    marketo.set_daily_limit(50_000, utc_offset_hours=-6)
    with marketo._lock:
        marketo._daily.try_acquire(clock.now)
        marketo._daily.used += 41_000  # other integrations on the instance

    ok, message = connection_test_for(marketo_connection)

    assert ok and "41,002 API calls on the instance today" in message, message
    status = connector_for(marketo_connection).http.throttle.quota_status()
    assert (status.used, status.left) == (41_002, 8_998)
    assert status.resets == datetime(2026, 3, 12, 6, tzinfo=UTC)


def connection_test_for(connection):
    from integrations.services import connection_test

    return connection_test(connection=connection)
