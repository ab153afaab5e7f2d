"""Sending the engine's tasks: always after the transaction that made their rows commits
(a task must find what it was sent for), and only ids (the rows say what is to be done)."""

from __future__ import annotations

from django.db import transaction


def dispatch_run(run_id: int) -> None:
    from integrations.tasks import run_sync_task

    transaction.on_commit(lambda: run_sync_task.delay(run_id=run_id))


def dispatch_polls(batch_ids: list[int], countdown: float) -> None:
    from integrations.tasks import poll_batch_task

    def send():
        for batch_id in batch_ids:
            poll_batch_task.apply_async(kwargs={"batch_id": batch_id}, countdown=countdown)

    transaction.on_commit(send)


def dispatch_batches(batch_ids: list[int], countdown: float = 0) -> None:
    from integrations.tasks import deliver_batch_task

    def send():
        for batch_id in batch_ids:
            deliver_batch_task.apply_async(kwargs={"batch_id": batch_id}, countdown=countdown)

    transaction.on_commit(send)
