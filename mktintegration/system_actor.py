"""The named system actor: configuration changed by Celery tasks (and beat) is recorded in the
change history as the user ``system``, not as nobody.

``system`` is a service account that cannot log in and holds no permission (inactive, no
password). Migration 0003 creates it; ``system_user()`` creates it again if it went missing.
The actor is looked up only when a task actually changes an audited model.
"""

from __future__ import annotations

import atexit
from contextlib import ExitStack

from celery import signals
from django.contrib.auth import get_user_model
from django.utils.functional import SimpleLazyObject

from audit.context import audit_actor

SYSTEM_USERNAME = "system"

# task id -> the open actor context of that task (prerun and postrun run in the same thread).
_task_contexts: dict[str, ExitStack] = {}


def system_user():
    """The ``system`` service account (created if missing)."""
    user, _ = get_user_model().objects.get_or_create(
        username=SYSTEM_USERNAME,
        defaults={
            "is_active": False,
            "is_service_account": True,
            "password": "!system-actor-never-logs-in",  # unusable: not a hasher's format
            "first_name": "System",
            "last_name": "(tasks)",
        },
    )
    return user


def _system_actor():
    return SimpleLazyObject(system_user)


def _task_started(task_id=None, **kwargs):
    stack = ExitStack()
    stack.enter_context(audit_actor(_system_actor()))
    _task_contexts[task_id] = stack


def _task_finished(task_id=None, **kwargs):
    stack = _task_contexts.pop(task_id, None)
    if stack is not None:
        stack.close()


_beat_context = ExitStack()


def _beat_started(**kwargs):
    # Beat writes PeriodicTask rows (e.g. the built-in schedule on start): as the system actor,
    # for the life of the beat process. The context is closed at exit, while the interpreter
    # still works: left to the garbage collector at shutdown, closing it raises "ImportError:
    # sys.meta_path is None" (a traceback on every Ctrl-C).
    _beat_context.enter_context(audit_actor(_system_actor()))
    atexit.register(_beat_context.close)


def connect() -> None:
    """Set the system actor around every Celery task and in beat (called from AppConfig.ready)."""
    signals.task_prerun.connect(_task_started, dispatch_uid="mkt-system-actor-start", weak=False)
    signals.task_postrun.connect(_task_finished, dispatch_uid="mkt-system-actor-end", weak=False)
    signals.beat_init.connect(_beat_started, dispatch_uid="mkt-system-actor-beat", weak=False)
    signals.beat_embedded_init.connect(
        _beat_started, dispatch_uid="mkt-system-actor-beat-embedded", weak=False
    )
