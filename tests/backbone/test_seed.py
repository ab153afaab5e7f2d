import hashlib
from datetime import UTC, datetime

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connections
from django.db.models import Count, F

from exports.backbone.models import (
    ActivityEvent,
    Company,
    CompanyMetrics,
    ConsentRecord,
    Contact,
)
from exports.backbone.router import backbone_alias
from exports.backbone.seed import reset_backbone, seed_backbone

ANCHOR = datetime(2026, 11, 1, tzinfo=UTC)


def _digest() -> str:
    """A fingerprint of every generated value, independent of the database's row order."""
    digest = hashlib.sha256()
    for model, fields in (
        (
            Company,
            [
                "id",
                "external_id",
                "name",
                "domain",
                "industry",
                "employees",
                "country",
                "residency_region",
                "city",
                "lifecycle_stage",
                "is_customer",
                "updated_at",
            ],
        ),
        (Contact, ["id", "company_id", "email", "first_name", "last_name", "title"]),
        (ActivityEvent, ["company_id", "contact_id", "type", "occurred_at"]),
        (ConsentRecord, ["contact_id", "purpose", "status", "source"]),
    ):
        for row in model.objects.order_by(*fields).values_list(*fields):
            digest.update(repr(row).encode())
    return digest.hexdigest()


@pytest.mark.django_db
def test_same_seed_gives_the_same_data_and_another_seed_does_not():
    seed_backbone(companies=300, seed=7, anchor=ANCHOR)
    first = _digest()
    reset_backbone()
    seed_backbone(companies=300, seed=7, anchor=ANCHOR)
    again = _digest()
    reset_backbone()
    seed_backbone(companies=300, seed=8, anchor=ANCHOR)

    assert first == again
    assert _digest() != first


@pytest.mark.django_db
def test_seeded_data_is_in_proportion_and_realistic():
    result = seed_backbone(companies=2000, seed=1, anchor=ANCHOR)

    assert Company.objects.count() == result.companies == 2000
    assert 2.5 <= Contact.objects.count() / 2000 <= 3.5
    assert 4 <= ActivityEvent.objects.count() / 2000 <= 7
    assert (
        0.75
        <= ConsentRecord.objects.filter(purpose="email_marketing").count() / Contact.objects.count()
        <= 0.95
    )
    # Every contact's e-mail is at its company's domain; every event's contact is the company's.
    for contact in Contact.objects.select_related("company")[:300]:
        assert contact.email.endswith("@" + contact.company.domain)
    assert not ActivityEvent.objects.exclude(contact__company_id=F("company_id")).exists()
    assert set(Company.objects.values_list("residency_region", flat=True)) == {
        "us",
        "eu",
        "uk",
        "apac",
        "latam",
    }
    assert ActivityEvent.objects.filter(occurred_at__gt=ANCHOR).count() == 0
    # Times are spread out: no instant holds a pile of rows (the admin lists sort by them).
    for model, field in (
        (ActivityEvent, "occurred_at"),
        (Company, "updated_at"),
        (Contact, "updated_at"),
    ):
        busiest = model.objects.values(field).annotate(n=Count("id")).order_by("-n").first()
        assert busiest["n"] <= 3, f"{busiest['n']} {model.__name__} rows at {busiest[field]}"
    customers = Company.objects.filter(is_customer=True)
    assert set(customers.values_list("lifecycle_stage", flat=True)) == {"customer", "evangelist"}


@pytest.mark.django_db
def test_seed_appends_after_existing_companies():
    seed_backbone(companies=10, seed=1, anchor=ANCHOR)
    seed_backbone(companies=5, seed=1, anchor=ANCHOR)

    assert sorted(Company.objects.values_list("id", flat=True)) == list(range(1, 16))


@pytest.mark.django_db
@pytest.mark.parametrize("bad", ["-5", "0", "abc", "1e3"])
def test_bad_company_count_is_one_line_exit_2_and_writes_nothing(bad):
    with pytest.raises(CommandError) as error:
        call_command("seed_demo", companies=bad)

    assert error.value.returncode == 2
    assert "--companies" in str(error.value) and "\n" not in str(error.value)
    assert not Company.objects.exists()


@pytest.mark.django_db
def test_seed_demo_command_prints_progress_and_rate(capsys):
    call_command("seed_demo", companies="50", seed="3", anchor="2026-11-01")

    out = capsys.readouterr().out
    assert "50/50 companies" in out
    assert "rows/s" in out.splitlines()[-1]
    assert CompanyMetrics.objects.count() == 50


@pytest.mark.django_db
def test_seed_uses_the_backbone_alias():
    seed_backbone(companies=3, seed=1, anchor=ANCHOR)

    with connections[backbone_alias()].cursor() as cursor:
        cursor.execute("SELECT COUNT(*) FROM backbone_company")
        assert cursor.fetchone()[0] == 3


def _schema_objects():
    with connections[backbone_alias()].cursor() as cursor:
        cursor.execute(
            "SELECT indexdef FROM pg_indexes WHERE tablename LIKE 'backbone_%%' "
            "UNION ALL SELECT conname || ' ' || pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid::regclass::text LIKE 'backbone_%%' ORDER BY 1"
        )
        return [row[0] for row in cursor.fetchall()]


@pytest.mark.django_db(transaction=True)
def test_bulk_load_on_postgresql_restores_every_index_and_constraint():
    if connections[backbone_alias()].vendor != "postgresql":
        pytest.skip("the bulk load (indexes dropped and rebuilt) is PostgreSQL only")
    before = _schema_objects()

    seed_backbone(companies=40, seed=1, anchor=ANCHOR, chunk_size=10, jobs=2)

    assert _schema_objects() == before
    assert Company.objects.count() == 40
    assert not Contact.objects.exclude(company__isnull=False).exists()
