"""The sync list a manager scans at 1366 px: state, last run, next run and open failures.

The last run and the open dead letters are annotated on the list's queryset (one subquery
each), the beat entries of the page's syncs are read in one query: the list costs the same
number of queries for 5 syncs as for 50.
"""

from __future__ import annotations

from datetime import datetime

from django.contrib.admin.views.main import ChangeList
from django.db.models import Count, IntegerField, OuterRef, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.text import Truncator

from integrations.models import DeadLetter, DeadLetterStatus, SyncRun
from integrations.models.runs import RunStatus
from integrations.operations.timing import beat_entries, next_run_at

# A run's status in a word or two (the run's page has the full sentence).
_RUN_WORDS = {
    RunStatus.PLANNING: "running",
    RunStatus.DELIVERING: "running",
    RunStatus.PAUSED: "stopped",
}


def sync_list_annotate(queryset: QuerySet) -> QuerySet:
    """The syncs with their latest run (id, status, when) and their open dead letters."""
    latest = (
        SyncRun.objects.filter(sync=OuterRef("pk"))
        .exclude(status=RunStatus.PREVIEW)
        .annotate(at=Coalesce("finished_at", "started_at", "queued_at"))
        .order_by("-queued_at", "-pk")
    )
    open_letters = (
        DeadLetter.objects.filter(sync=OuterRef("pk"), status=DeadLetterStatus.OPEN)
        .order_by()
        .values("sync")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return queryset.annotate(
        last_run_id=Subquery(latest.values("pk")[:1]),
        last_run_status=Subquery(latest.values("status")[:1]),
        last_run_at=Subquery(latest.values("at")[:1]),
        open_letters=Coalesce(Subquery(open_letters, output_field=IntegerField()), Value(0)),
    )


def relative(moment: datetime, *, now: datetime) -> str:
    """ "in 12 min", "3 h ago", "2 d ago", "just now": short enough for a list column."""
    seconds = (moment - now).total_seconds()
    minutes = round(abs(seconds) / 60)
    if minutes < 1:
        return "in under 1 min" if seconds > 0 else "just now"
    if minutes < 60:
        amount = f"{minutes} min"
    elif minutes < 48 * 60:
        amount = f"{minutes // 60} h"
    else:
        amount = f"{minutes // (24 * 60)} d"
    return f"in {amount}" if seconds > 0 else f"{amount} ago"


def state_text(sync) -> str:
    if sync.paused:
        reason = Truncator(sync.pause_reason).chars(40)
        return f"paused: {reason}" if reason else "paused"
    return "enabled" if sync.enabled else "disabled"


def last_run_html(sync, *, now: datetime) -> str:
    if sync.last_run_id is None:
        return "-"
    url = reverse("admin:integrations_syncrun_change", args=[sync.last_run_id])
    word = _RUN_WORDS.get(sync.last_run_status, sync.last_run_status)
    return format_html('<a href="{}">{}</a> {}', url, word, relative(sync.last_run_at, now=now))


def next_run_text(sync, *, now: datetime) -> str:
    when = getattr(sync, "next_run_at", None)
    return "—" if when is None else relative(when, now=now)


def failures_html(sync) -> str:
    url = getattr(sync, "letters_url", None)
    if url is None or not sync.open_letters:
        return str(sync.open_letters)
    return format_html('<a href="{}">{}</a>', url, sync.open_letters)


class SyncChangeList(ChangeList):
    """Adds to each sync of the page when beat runs it next (one query for the page's beat
    entries) and, for who may view dead letters, the link to its open ones."""

    def get_results(self, request):
        super().get_results(request)
        syncs = list(self.result_list)  # the page's queryset caches these same objects
        now = timezone.now()
        entries = beat_entries([sync.periodic_task_name for sync in syncs])
        letters = self.model_admin.admin_site.get_model_admin(DeadLetter)
        may_see_letters = letters.has_view_permission(request)
        letters_list = reverse("admin:integrations_deadletter_changelist")
        for sync in syncs:
            runnable = sync.enabled and not sync.paused
            entry = entries.get(sync.periodic_task_name)
            sync.next_run_at = next_run_at(entry, now=now) if runnable else None
            sync.letters_url = (
                f"{letters_list}?sync__id__exact={sync.pk}&status__exact={DeadLetterStatus.OPEN.value}"
                if may_see_letters
                else None
            )
