from celery import shared_task

from exports.backbone.metrics import refresh_company_metrics


@shared_task(name="backbone.refresh_metrics", ignore_result=True)
def refresh_metrics() -> int:
    """Recompute CompanyMetrics (beat: hourly). Returns how many rows changed."""
    return refresh_company_metrics().changed
