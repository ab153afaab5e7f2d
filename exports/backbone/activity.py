"""Recording people's activity in the backbone: what campaign feedback from the marketing tools
(opens, clicks) becomes, so the activity and lead scores reflect it (docs/metrics.md).

The one write path into ``ActivityEvent`` from outside the backbone's own seeding.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from exports.backbone.models import ActivityEvent, ActivityType, Contact


@dataclass(frozen=True)
class Activity:
    contact_id: int
    type: str  # an ActivityType
    occurred_at: datetime


def activities_record(*, activities: list[Activity]) -> int:
    """Add these activities (each to its contact's company); unknown contacts are skipped.
    Returns how many were added."""
    known = set(ActivityType.values)
    wanted = [a for a in activities if a.type in known]
    if not wanted:
        return 0
    companies = dict(
        Contact.objects.filter(pk__in={a.contact_id for a in wanted}).values_list(
            "pk", "company_id"
        )
    )
    rows = [
        ActivityEvent(
            company_id=companies[a.contact_id],
            contact_id=a.contact_id,
            type=a.type,
            occurred_at=a.occurred_at,
        )
        for a in wanted
        if a.contact_id in companies
    ]
    ActivityEvent.objects.bulk_create(rows)
    return len(rows)
