"""Recompute ``CompanyMetrics`` in one SQL statement (SQLite and PostgreSQL).

The formulas are documented in docs/metrics.md; keep the two in step. Every row of the
result is computed by the database; Python only passes the time windows.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import connections, transaction
from django.utils import timezone

from exports.backbone.models import MetricsRefresh
from exports.backbone.router import backbone_alias

# Points an activity earns toward the 30-day engagement score (capped at 100).
ENGAGEMENT_POINTS = {
    "demo_request": 25,
    "meeting": 15,
    "form_submit": 10,
    "webinar": 8,
    "email_click": 3,
    "support_ticket": 2,
    "page_view": 1,
    "email_open": 1,
}
# Industries that fit the ideal customer profile best.
TARGET_INDUSTRIES = ("software", "financial_services", "healthcare", "manufacturing")

_METRIC_COLUMNS = (
    "activity_7d",
    "activity_30d",
    "activity_90d",
    "active_contacts_90d",
    "last_activity_at",
    "health_score",
    "lead_fit_score",
    "lead_engagement_score",
    "lead_grade",
)


def _points_case() -> str:
    whens = " ".join(f"WHEN '{kind}' THEN {points}" for kind, points in ENGAGEMENT_POINTS.items())
    return f"CASE type {whens} ELSE 0 END"


def _refresh_sql(vendor: str) -> str:
    distinct = "IS DISTINCT FROM" if vendor == "postgresql" else "IS NOT"
    changed = " OR ".join(f"m.{col} {distinct} excluded.{col}" for col in _METRIC_COLUMNS)
    updates = ", ".join(f"{col} = excluded.{col}" for col in (*_METRIC_COLUMNS, "updated_at"))
    industries = ", ".join(f"'{name}'" for name in TARGET_INDUSTRIES)
    return f"""
    INSERT INTO backbone_companymetrics AS m (
        company_id, {", ".join(_METRIC_COLUMNS)}, updated_at
    )
    WITH activity AS (
        SELECT company_id,
               SUM(CASE WHEN occurred_at >= %(t7)s THEN 1 ELSE 0 END) AS a7,
               SUM(CASE WHEN occurred_at >= %(t30)s THEN 1 ELSE 0 END) AS a30,
               SUM(CASE WHEN occurred_at >= %(t90)s THEN 1 ELSE 0 END) AS a90,
               COUNT(DISTINCT CASE WHEN occurred_at >= %(t90)s THEN contact_id END) AS c90,
               MAX(occurred_at) AS last_at,
               SUM(CASE WHEN occurred_at >= %(t30)s THEN {_points_case()} ELSE 0 END) AS p30
        FROM backbone_activityevent
        WHERE occurred_at <= %(now)s
        GROUP BY company_id
    ),
    base AS (
        SELECT c.id AS company_id, c.employees, c.annual_revenue, c.industry,
               c.lifecycle_stage, c.is_customer,
               COALESCE(a.a7, 0) AS a7, COALESCE(a.a30, 0) AS a30, COALESCE(a.a90, 0) AS a90,
               COALESCE(a.c90, 0) AS c90, a.last_at, COALESCE(a.p30, 0) AS p30
        FROM backbone_company c LEFT JOIN activity a ON a.company_id = c.id
    ),
    scored AS (
        SELECT company_id, a7, a30, a90, c90, last_at,
               CASE WHEN last_at >= %(t7)s THEN 35 WHEN last_at >= %(t30)s THEN 25
                    WHEN last_at >= %(t90)s THEN 10 ELSE 0 END
             + CASE WHEN a30 >= 10 THEN 30 ELSE a30 * 3 END
             + CASE WHEN c90 >= 3 THEN 15 ELSE c90 * 5 END
             + CASE WHEN is_customer THEN 10 ELSE 0 END
             + CASE WHEN a7 > 0 AND a7 * 4 >= a30 THEN 10 ELSE 0 END AS health,
               CASE WHEN employees >= 1000 THEN 30 WHEN employees >= 200 THEN 25
                    WHEN employees >= 50 THEN 15 WHEN employees >= 10 THEN 5 ELSE 0 END
             + CASE WHEN annual_revenue >= 100000000 THEN 25
                    WHEN annual_revenue >= 10000000 THEN 20
                    WHEN annual_revenue >= 1000000 THEN 10 ELSE 0 END
             + CASE WHEN industry IN ({industries}) THEN 25
                    WHEN industry <> '' THEN 10 ELSE 0 END
             + CASE lifecycle_stage WHEN 'churned' THEN 0 WHEN 'subscriber' THEN 5
                    WHEN 'lead' THEN 10 ELSE 20 END AS fit,
               CASE WHEN p30 >= 100 THEN 100 ELSE p30 END AS engagement
        FROM base
    )
    SELECT company_id, a7, a30, a90, c90, last_at, health, fit, engagement,
           CASE WHEN fit >= 80 THEN 'A' WHEN fit >= 60 THEN 'B' WHEN fit >= 40 THEN 'C'
                WHEN fit >= 20 THEN 'D' ELSE 'F' END,
           %(now)s
    FROM scored WHERE true
    ON CONFLICT (company_id) DO UPDATE SET {updates}
    WHERE {changed}
    """


def refresh_company_metrics(*, now: datetime | None = None) -> MetricsRefresh:
    """Recompute every company's metrics as of ``now``; only changed rows are written."""
    alias = backbone_alias()
    connection = connections[alias]
    started = timezone.now()
    now = now or started
    adapt = connection.ops.adapt_datetimefield_value
    params = {
        "now": adapt(now),
        "t7": adapt(now - timedelta(days=7)),
        "t30": adapt(now - timedelta(days=30)),
        "t90": adapt(now - timedelta(days=90)),
    }
    with transaction.atomic(using=alias), connection.cursor() as cursor:
        cursor.execute(_refresh_sql(connection.vendor), params)
        changed = cursor.rowcount
        cursor.execute(
            "DELETE FROM backbone_companymetrics WHERE NOT EXISTS "
            "(SELECT 1 FROM backbone_company c WHERE c.id = backbone_companymetrics.company_id)"
        )
        cursor.execute("SELECT COUNT(*) FROM backbone_companymetrics")
        companies = cursor.fetchone()[0]
        return MetricsRefresh.objects.using(alias).create(
            started_at=started,
            finished_at=timezone.now(),
            as_of=now,
            companies=companies,
            changed=changed,
        )
