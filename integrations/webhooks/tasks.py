"""Celery tasks of the feedback loop: ids in, the modules do the work."""

from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from integrations.webhooks import polls, process, suppress
from integrations.webhooks.models import EventState, WebhookEvent

# Events past their retention deleted per beat run (the rest go on the next runs).
PRUNE_PER_RUN = 10_000


@shared_task(name="webhooks.process", ignore_result=True)
def process_events_task(*, event_ids: list[int]) -> dict:
    return process.events_process(event_ids=event_ids)


@shared_task(name="webhooks.suppress", ignore_result=True)
def suppress_task(*, connection_id: int) -> dict:
    counts = suppress.suppressions_run(connection_id=connection_id)
    if counts.get("retry_in"):
        suppress_task.apply_async(
            kwargs={"connection_id": connection_id}, countdown=counts["retry_in"]
        )
    return counts


@shared_task(name="webhooks.poll", ignore_result=True)
def poll_task(*, poll_id: int) -> dict:
    counts = polls.poll_run(poll_id=poll_id)
    if counts.get("again"):
        poll_task.delay(poll_id=poll_id)
    return counts


@shared_task(name="webhooks.maintain", ignore_result=True)
def maintain_task() -> dict:
    """Beat: events stored but not processed (a lost task) or failed and due again, opt-outs
    due, polls due; and received events past their retention."""
    now = timezone.now()
    cutoff = now - timedelta(days=settings.MKT_WEBHOOK_RETENTION_DAYS)
    old = list(
        WebhookEvent.objects.filter(received_at__lt=cutoff).values_list("pk", flat=True)[
            :PRUNE_PER_RUN
        ]
    )
    pruned = WebhookEvent.objects.filter(pk__in=old).delete()[1].get("webhooks.WebhookEvent", 0)
    stale = now - timedelta(seconds=60)
    waiting = list(
        WebhookEvent.objects.filter(
            Q(state=EventState.RECEIVED, received_at__lt=stale)
            | Q(
                state=EventState.FAILED,
                attempts__lt=process.MAX_ATTEMPTS,
                not_before__lte=now,
            )
        )
        .order_by("pk")
        .values_list("pk", flat=True)[:5000]
    )
    for start in range(0, len(waiting), 100):
        process_events_task.delay(event_ids=waiting[start : start + 100])
    connections = suppress.suppressions_due()
    for connection_id in connections:
        suppress_task.delay(connection_id=connection_id)
    polls.polls_standing_ensure()
    due = polls.polls_due()
    for poll_id in due:
        poll_task.delay(poll_id=poll_id)
    return {
        "events": len(waiting),
        "suppressions": len(connections),
        "polls": len(due),
        "pruned": pruned,
    }
