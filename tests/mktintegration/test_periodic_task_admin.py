"""django-celery-beat's list actions need the change permission here (upstream asks for none)."""

import pytest
from django.contrib.auth.models import Permission
from django_celery_beat.models import IntervalSchedule, PeriodicTask

BEAT_ACTIONS = {"enable_tasks", "disable_tasks", "toggle_tasks", "run_tasks"}


def _offered(page) -> set[str]:
    form = page.context["action_form"]  # None when no action is offered at all
    return set() if form is None else {value for value, _ in form.fields["action"].choices}


@pytest.mark.django_db
def test_viewing_periodic_tasks_does_not_let_you_run_or_toggle_them(client, user_with_role):
    viewer = user_with_role(None)
    viewer.user_permissions.add(Permission.objects.get(codename="view_periodictask"))
    every_minute = IntervalSchedule.objects.create(every=1, period=IntervalSchedule.MINUTES)
    task = PeriodicTask.objects.create(
        name="probe", task="mktintegration.heartbeat", interval=every_minute
    )
    client.force_login(viewer)

    page = client.get("/admin/django_celery_beat/periodictask/")
    assert page.status_code == 200
    assert not _offered(page) & BEAT_ACTIONS
    client.post(
        "/admin/django_celery_beat/periodictask/",
        {"action": "disable_tasks", "_selected_action": [task.pk]},
    )
    task.refresh_from_db()
    assert task.enabled


@pytest.mark.django_db
def test_superusers_keep_the_beat_actions(admin_client):
    page = admin_client.get("/admin/django_celery_beat/periodictask/")
    assert _offered(page) >= BEAT_ACTIONS
