"""Why a run's records were not sent, grouped for a person: "2,852 times numberofemployees:
'Berlin' is not a number — mapping city → numberofemployees".

The ledger keeps each record's last reason (``last_error``): the entries of the run's sync that
the run left failed, dead-lettered or held back (invalid, no consent, residency), touched while
it ran. Reasons that differ only in the value they quote are one reason (its first example is
shown). The grouping is done in SQL first (a count per distinct message, at most
``DISTINCT_LIMIT`` of them), so a run of a million refusals reads a few hundred rows.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.db.models import Count
from django.utils import timezone

from integrations.models import LedgerEntry, LedgerStatus, SyncRun

DISTINCT_LIMIT = 500
NOT_SENT = (LedgerStatus.FAILED, LedgerStatus.DEAD, LedgerStatus.SKIPPED)
_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"|\b\d[\d.,]*\b")
_FIELD = re.compile(r"^([\w:.-]+): ")


@dataclass(frozen=True)
class Reason:
    count: int
    example: str
    field: str = ""  # the destination field the reason names, where it names one
    source: str = ""  # the dataset field mapped to it


def run_reasons(run: SyncRun, *, limit: int = 5) -> list[Reason]:
    """The run's most frequent reasons, most frequent first."""
    if run.started_at is None:
        return []
    until = run.finished_at or timezone.now()
    rows = (
        LedgerEntry.objects.filter(
            sync_id=run.sync_id,
            status__in=NOT_SENT,
            updated_at__gte=run.started_at,
            updated_at__lte=until,
        )
        .exclude(last_error="")
        .values("last_error")
        .annotate(n=Count("pk"))
        .order_by("-n")[:DISTINCT_LIMIT]
    )
    groups: dict[str, list] = {}
    for row in rows:
        key = _QUOTED.sub("…", row["last_error"])
        group = groups.setdefault(key, [0, row["last_error"]])
        group[0] += row["n"]
    sources = {m.destination_field: m.source_field for m in run.sync.mappings.all()}
    reasons = []
    for count, example in sorted(groups.values(), key=lambda g: -g[0])[:limit]:
        match = _FIELD.match(example)
        field = match.group(1) if match and match.group(1) in sources else ""
        reasons.append(Reason(count, example, field, sources.get(field, "")))
    return reasons
