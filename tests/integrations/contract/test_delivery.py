"""The contract, part 2: what a sync writes, in each mode, and what it never writes twice."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from integrations.models import DeadLetter, LedgerEntry, RunStatus
from integrations.selectors import connector_for
from integrations.services import sync_validate
from tests.integrations.conftest import start_and_drive

pytestmark = pytest.mark.contract


def test_a_first_run_creates_and_a_change_updates_the_same_record(contract):
    records = contract.make(3)
    sync = contract.sync()

    first = start_and_drive(sync)

    assert (first.status, first.created, first.updated) == (RunStatus.SUCCEEDED, 3, 0)
    assert [contract.stored(r)[contract.field] for r in records] == [
        contract.obj.sent_value(r) for r in records
    ]
    changed = contract.obj.change(records[0])
    second = start_and_drive(sync)
    assert (second.planned, second.updated, second.created) == (1, 1, 0), second.counts()
    assert contract.stored(records[0])[contract.field] == changed
    assert [contract.creations(r) for r in records] == [1, 1, 1]
    synced = LedgerEntry.objects.filter(sync=sync, status="synced")
    assert synced.count() == 3 and all(synced.values_list("destination_id", flat=True))


def test_more_records_than_one_request_takes_go_in_requests_the_vendor_accepts(contract):
    size = contract.destination.max_batch
    contract.make(size + 1)

    run = start_and_drive(contract.sync())

    assert (run.status, run.created) == (RunStatus.SUCCEEDED, size + 1), run.counts()
    assert len(contract.writes()) == 2  # and the emulator held each to the vendor's limit


def test_an_unchanged_record_is_not_sent_again(contract):
    contract.make(3)
    sync = contract.sync()
    start_and_drive(sync)
    writes = len(contract.writes())

    again = start_and_drive(sync)
    full = start_and_drive(sync, full=True)  # every row read and compared, none sent

    assert (again.planned, again.created, again.updated) == (0, 0, 0)
    assert (full.planned, full.unchanged, full.created, full.updated) == (3, 3, 0, 0)
    assert len(contract.writes()) == writes


def test_a_refused_record_is_dead_lettered_with_the_vendors_reason_and_the_rest_confirmed(
    contract,
):
    good = contract.make(2)
    [bad] = contract.make(1)
    reason = contract.obj.reject(contract.server, bad)
    sync = contract.sync()

    run = start_and_drive(sync)

    assert (run.status, run.created, run.dead_lettered) == (RunStatus.PARTIAL, 2, 1), run.counts()
    letter = DeadLetter.objects.get(sync=sync)
    assert letter.record_key == str(bad.pk)
    assert reason in letter.error, letter.error
    # The others were confirmed in the same request (one per record where a request takes
    # one, Pardot): the refusal cost no request of its own.
    assert len(contract.writes()) == -(-3 // contract.destination.max_batch)
    assert all(contract.stored(r) for r in good) and contract.stored(bad) is None
    assert set(LedgerEntry.objects.filter(sync=sync).values_list("record_key", "status")) == {
        *((str(r.pk), "synced") for r in good),
        (str(bad.pk), "dead"),
    }


def _one_existing_one_new(contract, *, mode: str, existing_value: str):
    """A record the destination already has (with ``existing_value``), one it has not, and a
    run of a sync in ``mode`` over both."""
    existing, new = contract.make(2)
    contract.seed(existing, **{contract.field: existing_value})
    sync = contract.sync(mode=mode)
    return existing, new, sync, start_and_drive(sync)


def test_create_only_creates_what_is_missing_and_leaves_existing_records_alone(contract):
    existing, new, sync, run = _one_existing_one_new(
        contract, mode="create_only", existing_value="Kept as it was"
    )

    assert (run.created, run.unchanged, run.updated) == (1, 1, 0), run.counts()
    assert contract.stored(existing)[contract.field] == "Kept as it was"
    assert contract.stored(new)[contract.field] == contract.obj.sent_value(new)
    assert contract.creations(existing) == 1
    assert start_and_drive(sync).planned == 0


def test_update_only_updates_existing_records_and_creates_none(contract):
    existing, new, _, run = _one_existing_one_new(
        contract, mode="update_only", existing_value="Old value"
    )

    assert (run.updated, run.unchanged, run.created) == (1, 1, 0), run.counts()
    assert contract.stored(existing)[contract.field] == contract.obj.sent_value(existing)
    assert contract.stored(new) is None


def test_lookup_finds_existing_records_by_match_value(contract):
    a, b, missing = contract.make(3)
    contract.seed(a)
    contract.seed(b)
    values = [contract.value(r) for r in (a, b, missing)]
    if contract.obj.email_match:
        values.append(contract.value(a).upper())  # e-mail addresses match whatever their case

    found = connector_for(contract.connection).lookup(
        contract.obj.name,
        values,
        match_field=contract.obj.match[1],
        destination_config=contract.destination_config,
    )

    assert set(found) == set(values) - {contract.value(missing)}
    assert all(found.values())


def test_mirror_archives_only_what_the_sync_created(contract):
    if not contract.destination.supports_delete:
        sync = contract.sync(mode="mirror")
        with pytest.raises(ValidationError, match="cannot archive"):
            sync_validate(sync, list(sync.mappings.all()))
        return
    theirs, ours_gone, ours_kept = contract.make(3)
    contract.seed(theirs, **{contract.field: "theirs"})
    sync = contract.sync(mode="mirror", mirror_max_delete_share=1)
    first = start_and_drive(sync)
    assert (first.created, first.updated) == (2, 1), first.counts()

    theirs.delete()
    ours_gone.delete()
    run = start_and_drive(sync)

    assert (run.status, run.deleted) == (RunStatus.SUCCEEDED, 1), run.counts()
    assert contract.archived(ours_gone) and contract.stored(ours_gone) is None
    assert not contract.archived(theirs) and contract.stored(theirs) is not None
    assert contract.stored(ours_kept) is not None


def test_a_mixed_case_email_matches_the_destinations_record_and_never_duplicates_it(contract):
    if not contract.obj.email_match:
        pytest.skip(f"{contract.obj.name} match on {contract.obj.match[1]}, not an e-mail")
    [ours] = contract.make(1, email="Grace.Hopper@Example.COM")
    contract.seed("grace.hopper@example.com", **{contract.field: "Old value"})
    contract.make(1, email="Alan.Turing@Example.COM")  # new to the destination
    sync = contract.sync()

    first = start_and_drive(sync)
    changed = contract.obj.change(ours)
    second = start_and_drive(sync)
    third = start_and_drive(sync, full=True)

    assert (first.updated, first.created) == (1, 1), first.counts()
    assert (second.planned, second.updated, second.created) == (1, 1, 0), second.counts()
    assert (third.unchanged, third.created, third.updated) == (2, 0, 0), third.counts()
    assert contract.stored("grace.hopper@example.com")[contract.field] == changed
    assert contract.creations("grace.hopper@example.com") == 1
    assert contract.creations("alan.turing@example.com") == 1


def test_two_records_whose_emails_differ_only_in_case_are_one_recipient(contract):
    if not contract.obj.email_match:
        pytest.skip(f"{contract.obj.name} match on {contract.obj.match[1]}, not an e-mail")
    [first] = contract.make(1, email="same.person@example.com")
    [copy] = contract.make(1, email="Same.Person@Example.com")
    sync = contract.sync()

    run = start_and_drive(sync)

    assert (run.created, run.invalid) == (1, 1), run.counts()
    entry = LedgerEntry.objects.get(sync=sync, record_key=str(copy.pk))
    assert f"is also record {first.pk}'s" in entry.last_error
    assert contract.creations("same.person@example.com") == 1
