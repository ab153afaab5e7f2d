"""The connector contract once more for Salesforce, with every run through Bulk API 2.0: the
threshold at 0, jobs of 200 records (so that "more records than one request takes" means two
jobs), and jobs that take their time at the emulator. The tests are the contract suite's own,
collected here with this module's ``contract`` fixture."""

from __future__ import annotations

from dataclasses import fields

import pytest

from tests.integrations.contract.case import Contract
from tests.integrations.contract.profiles.salesforce import SalesforceObject, SalesforceProfile
from tests.integrations.contract.test_delivery import (  # noqa: F401 - collected here
    test_a_first_run_creates_and_a_change_updates_the_same_record,
    test_a_mixed_case_email_matches_the_destinations_record_and_never_duplicates_it,
    test_a_refused_record_is_dead_lettered_with_the_vendors_reason_and_the_rest_confirmed,
    test_an_unchanged_record_is_not_sent_again,
    test_create_only_creates_what_is_missing_and_leaves_existing_records_alone,
    test_mirror_archives_only_what_the_sync_created,
    test_more_records_than_one_request_takes_go_in_requests_the_vendor_accepts,
    test_two_records_whose_emails_differ_only_in_case_are_one_recipient,
    test_update_only_updates_existing_records_and_creates_none,
)
from tests.integrations.contract.test_faults import (  # noqa: F401 - collected here
    test_a_5xx_is_transient_and_retried_with_nothing_lost_or_doubled,
    test_a_401_pauses_the_sync_marks_the_connection_and_loses_nothing,
    test_a_429_waits_out_retry_after_and_costs_no_attempt,
)
from tests.integrations.contract.test_fields import (  # noqa: F401 - collected here
    test_a_required_destination_field_must_be_mapped,
    test_a_value_the_destination_does_not_offer_is_invalid_at_plan_time,
)

JOBS = "/jobs/ingest"


class BulkObject(SalesforceObject):
    def writes(self, server):
        """A job is one write: its creation (then its one upload and its close)."""
        return [c for c in server.requests if c.method == "POST" and c.path.endswith(JOBS)]


class BulkProfile(SalesforceProfile):
    write_path = JOBS
    objects = {
        name: BulkObject(**{f.name: getattr(obj, f.name) for f in fields(obj)})
        for name, obj in SalesforceProfile.objects.items()
    }


PROFILE = BulkProfile()


@pytest.fixture(params=sorted(PROFILE.objects), ids=lambda name: f"salesforce-bulk-{name}")
def contract(request, db, settings, salesforce):
    settings.MKT_SALESFORCE_BULK_THRESHOLD = 0
    settings.MKT_SALESFORCE_BULK_JOB_RECORDS = 200  # the Collections maximum: two jobs for 201
    salesforce.bulk.job_seconds = 0.3
    obj = PROFILE.objects[request.param]
    obj.prepare(salesforce)
    yield Contract(PROFILE, obj, salesforce, PROFILE.connection(salesforce))
    assert salesforce.violations == [], "requests off Salesforce's documented shapes"
