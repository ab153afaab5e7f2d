"""Beat tasks of the operations app. Thin: they call the evaluation and check services."""

from celery import shared_task


@shared_task(name="operations.check_connections", ignore_result=True)
def check_connections_task() -> dict:
    """Every minute: test the connections whose check is due (uptime)."""
    from integrations.operations.checks import connections_check_due

    return connections_check_due()


@shared_task(name="operations.evaluate_alerts", ignore_result=True)
def evaluate_alerts_task() -> dict:
    """Every two minutes: observe every object's state and mail the changes."""
    from integrations.operations.evaluate import evaluate_all

    return evaluate_all()
