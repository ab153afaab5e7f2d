"""A first plan made in the database files every record exactly as the Python path does.

Each test plans the same source twice, once gated in SQL (integrations.engine.plan_sql) and
once in Python, into two syncs with the same configuration, and compares what a user would
see: every ledger entry (state, reason, match value, plan hash), the records handed to
delivery, and the run's buckets. The sources are hostile where the two paths could differ:
match values with spaces, other whitespace, capitals, non-ASCII letters, duplicates either
side in key order, values the destination field refuses, regions, consent.
"""

import pytest

from integrations.engine.planner import Planner
from integrations.models import LedgerEntry, SyncRun
from mktintegration import roles
from tests.factories import CompanyFactory, ConsentRecordFactory, ContactFactory
from tests.integrations.conftest import COMPANY_MAPPINGS, make_sync

MEMBER_MAPPINGS = [("first_name", "FNAME"), ("last_name", "LNAME"), ("company_name", "COMPANY")]


def _plan(sync, *, in_database: bool):
    run = SyncRun.objects.create(sync=sync, trigger="manual", config_version=sync.config_version)
    planner = Planner(run)
    planner.in_database = in_database
    keys: list[str] = []
    planner.on_keys = lambda batch, kind: keys.extend(batch)
    planner.flush_size = 7  # several flushes on the Python path
    result = planner.plan()
    return result, keys


def _ledger(sync):
    return {
        e.record_key: (e.status, e.last_error, e.match_value, e.plan_hash)
        for e in LedgerEntry.objects.filter(sync=sync)
    }


def _both(make):
    """Plan two identical syncs, one each way: (sql result, sql keys, python result, ...)."""
    in_sql, in_python = make(), make()
    sql, sql_keys = _plan(in_sql, in_database=True)
    python, python_keys = _plan(in_python, in_database=False)
    assert _ledger(in_sql) == _ledger(in_python)
    assert sorted(sql_keys) == sorted(python_keys)
    assert (sql.counts, sql.planned) == (python.counts, python.planned)
    return sql, python, _ledger(in_sql)


def _member_sync(connection, **kwargs):
    return make_sync(
        connection,
        dataset="contacts",
        obj="members",
        mappings=MEMBER_MAPPINGS,
        match=("email", "email_address"),
        destination_config={"list_id": "list0001"},
        consent_purpose="email_marketing",
        **kwargs,
    )


HOSTILE_EMAILS = [
    "plain@example.com",
    "Upper.Case@Example.COM",
    "upper.case@example.com",  # the same recipient, later in key order
    " spaced@example.com",  # Python strips it: then it is spaced@example.com's
    "spaced@example.com",
    "nbsp@example.com\u00a0",  # a no-break space Python strips too
    "nbsp@example.com",
    "earlier@example.com",  # planned in SQL; the next one is the same after strip, later
    "earlier@example.com ",
    "ünïcode@example.com",
    "ÜNÏCODE@example.com",
    "not-an-address",
    "two@@example.com",
    "no-dot@example",
    "tab\t@example.com",
    "x" * 240 + "@example.com",  # long (the ledger keeps 255 characters)
    "withdrawn@example.com",
    "never@example.com",
    "blocked-region@example.com",
]


@pytest.mark.django_db
def test_hostile_member_addresses_are_filed_the_same_in_sql_and_in_python(mailchimp_connection):
    mailchimp_connection.allowed_regions = ["eu"]
    mailchimp_connection.save()
    for email in HOSTILE_EMAILS:
        contact = ContactFactory(email=email, region="us" if "region" in email else "eu")
        if "withdrawn" in email:
            ConsentRecordFactory(contact=contact, status="withdrawn")
        elif "never" not in email:
            ConsentRecordFactory(contact=contact, status="granted")

    sql, python, ledger = _both(lambda: _member_sync(mailchimp_connection))

    assert sql.path.startswith("database: ") and python.path == "python"
    by_email = dict(zip(HOSTILE_EMAILS, sorted(ledger, key=int), strict=True))
    reasons = {email: ledger[key][1] for email, key in by_email.items()}
    assert reasons["plain@example.com"] == ""
    assert "is also record" in reasons["upper.case@example.com"]
    assert "is also record" in reasons["spaced@example.com"]  # the spaced one came first
    assert "is also record" in reasons["nbsp@example.com"]
    assert "is also record" in reasons["earlier@example.com "]
    assert "not an e-mail address" in reasons["two@@example.com"]
    assert reasons["withdrawn@example.com"].startswith("no email_marketing consent")
    assert reasons["blocked-region@example.com"].startswith("region us")


@pytest.mark.django_db
def test_a_record_planned_in_sql_gives_its_address_up_to_an_earlier_one_planned_in_python(
    mailchimp_connection,
):
    first = ContactFactory(email="\u2003late@example.com")  # an em space: Python's path
    second = ContactFactory(email="late@example.com")  # clean: the database's path
    for contact in (first, second):
        ConsentRecordFactory(contact=contact)

    sql, _, ledger = _both(lambda: _member_sync(mailchimp_connection))

    assert ledger[str(first.pk)][0] == "pending"
    assert ledger[str(second.pk)][:2] == (
        "skipped",
        f"email 'late@example.com' is also record {first.pk}'s",
    )
    assert sql.path == "database: 0 records gated in SQL, 2 in Python"


@pytest.mark.django_db
def test_company_values_the_destination_refuses_are_filed_the_same(hubspot_connection):
    for city in ["Berlin", "12", "-3.5", " 7", "1e3", "", "٣"]:  # to a number property
        CompanyFactory(city=city)
    CompanyFactory(employees=None)

    def make():
        return make_sync(
            hubspot_connection, mappings=[*COMPANY_MAPPINGS, ("city", "annualrevenue")]
        )

    sql, _, ledger = _both(make)

    refused = sorted(reason for _, reason, _, _ in ledger.values() if reason)
    # ' 7', '1e3' and '٣' are numbers to Python's Decimal, as HubSpot takes them.
    assert refused == ["annualrevenue: 'Berlin' is not a number"] * 2
    assert sql.path.startswith("database: ")


@pytest.mark.django_db
def test_a_transform_that_may_fail_keeps_the_plan_in_python(hubspot_connection):
    CompanyFactory.create_batch(3, city="2026-05-01")  # a text field: dates here, not always
    sync = make_sync(hubspot_connection, mappings=[*COMPANY_MAPPINGS, ("city", "closedate")])
    sync.mappings.filter(destination_field="closedate").update(transform="epoch_ms")

    result, keys = _plan(sync, in_database=True)

    assert result.path == "python: the epoch_ms transform of city may fail on a record"
    assert len(keys) == 3


@pytest.mark.django_db
def test_the_run_says_where_its_plan_ran(company_sync, client_for):
    from tests.integrations.conftest import start_and_drive

    CompanyFactory.create_batch(5)

    run = start_and_drive(company_sync)

    assert (run.status, run.created) == ("succeeded", 5)
    assert run.plan_path == "database: 5 records gated in SQL, 0 in Python"
    admin_client = client_for(roles.INTEGRATION_ADMIN)
    page = admin_client.get(f"/admin/integrations/syncrun/{run.pk}/change/").content.decode()
    assert "database: 5 records gated in SQL, 0 in Python" in page
    again = start_and_drive(company_sync, full=True)  # a full plan, with a ledger: Python
    assert (again.unchanged, again.plan_path) == (5, "python")


@pytest.mark.django_db
def test_unique_ids_that_are_one_id_once_trimmed_are_filed_the_same(hubspot_connection):
    for external_id in ["K-1 ", "K-1", "K-2", "\tK-2", "K-3", "K-3\u00a0", "", " "]:
        CompanyFactory(external_id=external_id)

    sql, _, ledger = _both(lambda: make_sync(hubspot_connection))

    reasons = sorted(reason.split(" is also record")[0] for _, reason, _, _ in ledger.values())
    assert reasons == [
        "",  # "K-1 " came first: it is sent, and "K-1" after it is its duplicate
        "",  # "K-2"
        "",  # "K-3"
        "external_id 'K-1'",
        "external_id 'K-2'",
        "external_id 'K-3'",
        "no value in external_id (the match key)",
        "no value in external_id (the match key)",
    ]
    assert sql.path == "database: 2 records gated in SQL, 6 in Python"
