"""Celery tasks of the events out: no arguments (the outbox rows say what is to be done)."""

from celery import shared_task

from integrations.events_out.deliver import outbox_deliver, outbox_maintain


@shared_task(name="events_out.deliver", ignore_result=True)
def deliver_events_task() -> None:
    """Sent when a transaction that wrote events commits, and by the beat task below."""
    if outbox_deliver()["more"]:
        deliver_events_task.delay()


@shared_task(name="events_out.maintain", ignore_result=True)
def maintain_events_task() -> dict:
    """Beat: give back lost batches, prune delivered events, deliver what is due (retries)."""
    counts = outbox_maintain()
    if counts["due"]:
        deliver_events_task.delay()
    return counts
