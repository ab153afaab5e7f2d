"""A value the destination refuses costs no storm of requests: it is caught at plan time, or
refused by itself (HubSpot's multi-status answer), or isolated in a bounded number of splits."""

from __future__ import annotations

import pytest

from integrations.models import DeadLetter, FieldMapping, LedgerEntry, RunStatus
from integrations.services import sync_preview
from tests.factories import CompanyFactory
from tests.integrations.conftest import make_sync, start_and_drive

STAGES = [("name", "name"), ("lifecycle_stage", "lifecyclestage")]
# Our stages to HubSpot's internal values (the docs' example in docs/connectors/hubspot.md).
STAGE_MAP = {
    "mql": "marketingqualifiedlead",
    "sql": "salesqualifiedlead",
    "churned": "other",
}


def _companies():
    for stage, count in (("lead", 40), ("mql", 30), ("sql", 20), ("churned", 10)):
        CompanyFactory.create_batch(count, lifecycle_stage=stage)


@pytest.mark.django_db
def test_a_value_the_destination_does_not_offer_is_invalid_at_plan_time(
    hubspot, hubspot_connection
):
    sync = make_sync(hubspot_connection, mappings=STAGES)
    _companies()

    preview = sync_preview(sync=sync)
    run = start_and_drive(sync)

    assert preview.invalid == 60 and preview.preview["would_send"] == 40
    assert (run.created, run.invalid, run.rejected, run.dead_lettered) == (40, 60, 0, 0)
    reasons = set(
        LedgerEntry.objects.filter(sync=sync, status="skipped").values_list("last_error", flat=True)
    )
    assert any(
        "lifecyclestage: 'mql' is not one of the field's options" in r and "subscriber" in r
        for r in reasons
    ), reasons
    # One request for the 40 good records; not one refused request.
    upserts = hubspot.calls("batch/upsert")
    assert len(upserts) == 1 and all(call.status == 200 for call in upserts)


@pytest.mark.django_db
def test_a_value_map_sends_the_destinations_own_options(hubspot, hubspot_connection):
    sync = make_sync(hubspot_connection, mappings=STAGES)
    FieldMapping.objects.filter(sync=sync, destination_field="lifecyclestage").update(
        value_map=STAGE_MAP
    )
    _companies()

    run = start_and_drive(sync)

    assert (run.status, run.created, run.invalid) == (RunStatus.SUCCEEDED, 100, 0)
    stages = sorted({o["properties"]["lifecyclestage"] for o in hubspot.objects("companies")})
    assert stages == ["lead", "marketingqualifiedlead", "other", "salesqualifiedlead"]


@pytest.mark.django_db
def test_a_record_the_vendor_refuses_is_refused_alone_in_one_request(hubspot, hubspot_connection):
    sync = make_sync(hubspot_connection)
    CompanyFactory.create_batch(99, country="DE")
    poisoned = CompanyFactory(country="ZZ")  # the column holds ISO codes
    hubspot.reject_values("companies", "country", "ZZ", "ZZ is not a country")

    run = start_and_drive(sync)

    assert (run.created, run.dead_lettered) == (99, 1)
    assert len(hubspot.calls("batch/upsert")) == 1  # a 207, not a split
    letter = DeadLetter.objects.get()
    assert letter.record_key == str(poisoned.pk) and "ZZ is not a country" in letter.error


@pytest.mark.django_db
def test_a_request_refused_as_a_whole_is_split_a_bounded_number_of_times(
    hubspot, hubspot_connection
):
    sync = make_sync(hubspot_connection)
    CompanyFactory.create_batch(100)
    body = {"status": "error", "category": "VALIDATION_ERROR", "message": "Invalid input JSON"}
    hubspot.fail_next(1_000, status=400, body=body, path_contains="batch/upsert")

    run = start_and_drive(sync)

    assert len(hubspot.calls("batch/upsert")) == 7  # 1 + 2 + 4, never 199
    assert (run.status, run.created, run.dead_lettered) == (RunStatus.PARTIAL, 0, 100)
    errors = set(DeadLetter.objects.values_list("error", flat=True))
    assert errors == {
        "HubSpot batch upsert: Invalid input JSON "
        "(its request of 25 records was refused as a whole)"
    }, errors
