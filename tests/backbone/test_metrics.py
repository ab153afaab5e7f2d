"""The health score and lead-scoring formulas (docs/metrics.md), computed by the database."""

from datetime import timedelta

import pytest

from exports.backbone.metrics import refresh_company_metrics
from exports.backbone.models import CompanyMetrics
from tests.factories import NOW, ActivityEventFactory, CompanyFactory, ContactFactory


def _event(company, contact, kind, days_ago):
    return ActivityEventFactory(
        company=company, contact=contact, type=kind, occurred_at=NOW - timedelta(days=days_ago)
    )


@pytest.fixture
def engaged_customer(db):
    company = CompanyFactory(
        is_customer=True,
        lifecycle_stage="customer",
        employees=1200,
        annual_revenue=150_000_000,
        industry="software",
    )
    a, b, c = (ContactFactory(company=company) for _ in range(3))
    _event(company, a, "demo_request", 2)
    _event(company, b, "page_view", 3)
    _event(company, c, "page_view", 6)
    _event(company, a, "form_submit", 20)
    _event(company, a, "email_open", 20)
    _event(company, b, "webinar", 60)
    _event(company, b, "meeting", 200)
    return company


@pytest.mark.django_db
def test_engaged_customer_scores_by_the_documented_formula(engaged_customer):
    refresh_company_metrics(now=NOW)

    m = CompanyMetrics.objects.get(company=engaged_customer)
    assert (m.activity_7d, m.activity_30d, m.activity_90d, m.active_contacts_90d) == (3, 5, 6, 3)
    assert m.last_activity_at == NOW - timedelta(days=2)
    # recency 35 + frequency 5*3 + breadth 15 + customer 10 + momentum 10
    assert m.health_score == 85
    # employees 30 + revenue 25 + target industry 25 + stage 20
    assert (m.lead_fit_score, m.lead_grade) == (100, "A")
    # demo 25 + two page views + form 10 + e-mail open 1 (the webinar is older than 30 days)
    assert m.lead_engagement_score == 38


@pytest.mark.django_db
def test_dormant_small_lead_scores_low():
    company = CompanyFactory(employees=5, annual_revenue=None, industry="", lifecycle_stage="lead")

    refresh_company_metrics(now=NOW)

    m = CompanyMetrics.objects.get(company=company)
    assert (m.health_score, m.lead_fit_score, m.lead_grade, m.lead_engagement_score) == (
        0,
        10,
        "F",
        0,
    )
    assert m.last_activity_at is None


@pytest.mark.django_db
def test_refresh_rewrites_only_companies_whose_metrics_changed(engaged_customer):
    quiet = CompanyFactory()
    first = refresh_company_metrics(now=NOW)
    assert first.changed == 2

    assert refresh_company_metrics(now=NOW).changed == 0

    later = NOW + timedelta(hours=1)
    _event(quiet, None, "form_submit", 0)
    second = refresh_company_metrics(now=later + timedelta(minutes=1))
    assert second.changed == 1
    assert CompanyMetrics.objects.get(company=quiet).updated_at == later + timedelta(minutes=1)
    assert CompanyMetrics.objects.get(company=engaged_customer).updated_at == NOW


@pytest.mark.django_db
def test_scores_decay_as_time_passes_without_activity(engaged_customer):
    refresh_company_metrics(now=NOW)
    refresh_company_metrics(now=NOW + timedelta(days=45))

    m = CompanyMetrics.objects.get(company=engaged_customer)
    assert m.activity_7d == 0 and m.activity_30d == 0
    assert m.health_score < 85
    assert m.lead_engagement_score == 0
