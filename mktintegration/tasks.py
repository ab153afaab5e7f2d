from celery import shared_task
from django.utils import timezone

from mktintegration.models import WorkerHeartbeat


@shared_task(name="mktintegration.heartbeat", ignore_result=True)
def heartbeat(*, hostname: str | None = None) -> None:
    """Record that a worker is alive and consuming (beat sends this every 30 s)."""
    name = hostname or heartbeat.request.hostname or "unknown"
    WorkerHeartbeat.objects.update_or_create(hostname=name, defaults={"seen_at": timezone.now()})
