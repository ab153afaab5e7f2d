"""Export schedules as configuration: validation naming the field, the frequency cap, and the
beat entry kept in step by the service."""

import json

import pytest
from django.core.exceptions import ValidationError
from django_celery_beat.models import PeriodicTask
from guardian.shortcuts import get_perms

from exports.models import ExportSchedule
from exports.schedules import min_gap_minutes
from exports.services import export_schedule_delete, export_schedule_save
from mktintegration import roles


def _errors(make_schedule, **fields) -> dict[str, list[str]]:
    with pytest.raises(ValidationError) as error:
        make_schedule(**fields)
    return error.value.message_dict


@pytest.mark.django_db
def test_saving_a_schedule_keeps_its_beat_entry_in_step(make_schedule):
    schedule = make_schedule(cron="30 6 * * 1-5")
    task = PeriodicTask.objects.get(name=f"export-schedule-{schedule.pk}")
    assert task.task == "exports.run_schedule" and task.enabled
    assert json.loads(task.kwargs) == {"schedule_id": schedule.pk}
    crontab = task.crontab
    assert (crontab.minute, crontab.hour, crontab.day_of_week, str(crontab.timezone)) == (
        "30",
        "6",
        "1-5",
        "UTC",
    )

    schedule.cron, schedule.every_minutes, schedule.enabled = "", 60, False
    export_schedule_save(schedule=schedule)
    task.refresh_from_db()
    assert task.crontab is None and task.interval.every == 60 and not task.enabled

    schedule.every_minutes = None  # runs only when asked
    export_schedule_save(schedule=schedule)
    assert not PeriodicTask.objects.filter(name=f"export-schedule-{schedule.pk}").exists()

    schedule.cron = "0 7 * * *"
    export_schedule_save(schedule=schedule)
    export_schedule_delete(schedule=schedule)
    assert not PeriodicTask.objects.filter(name__startswith="export-schedule-").exists()
    assert not ExportSchedule.objects.exists()


@pytest.mark.django_db
def test_the_creator_of_a_schedule_owns_it_and_is_granted_it(make_schedule, manager):
    schedule = make_schedule()

    assert schedule.owner == manager
    assert set(get_perms(manager, schedule)) == {
        "view_exportschedule",
        "change_exportschedule",
        "delete_exportschedule",
        "run_exportschedule",
    }


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("fields", "field", "says"),
    [
        ({"every_minutes": 5, "cron": ""}, "every_minutes", "would run every 5 minutes"),
        ({"cron": "*/5 * * * *"}, "cron", "would run every 5 minutes"),
        ({"cron": "0,10 9 * * *"}, "cron", "would run every 10 minutes"),
        ({"cron": "0,59 0,23 * * *"}, "cron", "would run every 1 minute "),  # 23:59 then 00:00
    ],
)
def test_a_schedule_running_more_often_than_the_cap_is_refused_on_save(
    make_schedule, fields, field, says
):
    errors = _errors(make_schedule, **fields)

    assert says in errors[field][0] and "at most every 15 minutes" in errors[field][0]


@pytest.mark.django_db
def test_an_admin_may_lower_a_schedules_cap(make_schedule):
    schedule = make_schedule(cron="*/5 * * * *", min_interval_minutes=5)

    assert schedule.pk


@pytest.mark.parametrize(
    ("cron", "every", "gap"),
    [
        ("", None, None),
        ("", 90, 90),
        ("0 6 * * *", None, 1440),
        ("0 6 * * 1", None, 7 * 1440),
        ("0 6 * * 1-5", None, 1440),
        ("0 6,18 * * *", None, 720),
        ("59 23 * * 1", None, 7 * 1440),
        ("0,59 0,23 * * 1", None, 59),  # Monday 23:59 is not followed by a Tuesday 00:00
        ("0 0 29 2 *", None, 4 * 365 * 1440 + 1440),  # once every four years
        ("*/20 * * * *", None, 20),
    ],
)
def test_min_gap_minutes(cron, every, gap):
    assert min_gap_minutes(cron=cron, every_minutes=every) == gap


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("fields", "field", "says"),
    [
        ({"dataset": "orders"}, "dataset", "unknown dataset 'orders'; known datasets: clients"),
        (
            {"fields": ["id", "nope"]},
            "fields",
            "unknown field(s): nope. Allowed fields for clients",
        ),
        ({"filters": {"colour": "red"}}, "filters", "unknown filter(s): colour"),
        ({"filters": {"min_health_score": "high"}}, "filters", "min_health_score: 'high' is not"),
        ({"filters": {"updated_since": "yesterday"}}, "filters", "updated_since: 'yesterday'"),
        ({"filters": {"lifecycle_stage": "alien"}}, "filters", "lifecycle_stage: unknown value"),
        ({"filters": {"limit": "10"}}, "filters", "limit is not a filter: files are capped by"),
        ({"filters": {"country": {"a": 1}}}, "filters", "country: give the value as text"),
        ({"cron": "61 * * * *"}, "cron", "'61 * * * *' is not a valid cron expression"),
        ({"cron": "0 6 * *"}, "cron", "it needs 5 fields"),
        ({"cron": "0 0 31 2 *"}, "cron", "is not a valid cron expression"),
        ({"cron": "0 6 * * *", "every_minutes": 60}, "every_minutes", "not both"),
        ({"dataset": "contacts"}, "dataset", "mona may not export the contacts dataset"),
        ({"max_rows": 300_000}, "max_rows", "at most 250,000"),
        ({"name": "!!!"}, "name", "needs letters or digits"),
    ],
)
def test_bad_configuration_is_an_error_naming_the_field(make_schedule, fields, field, says):
    errors = _errors(make_schedule, **fields)

    assert field in errors, errors
    assert any(says in message for message in errors[field]), errors[field]
    assert not PeriodicTask.objects.filter(name__startswith="export-schedule-").exists()


@pytest.mark.django_db
def test_two_schedules_may_not_share_a_file_name_prefix(make_schedule):
    make_schedule(name="Weekly clients")

    errors = _errors(make_schedule, name="weekly  CLIENTS")

    assert "already named weekly-clients-..." in errors["name"][0]


@pytest.mark.django_db
def test_filters_are_kept_as_the_export_apis_query_strings(make_schedule):
    schedule = make_schedule(
        filters={"country": ["DE", "FR"], "is_customer": True, "min_health_score": 40}
    )

    assert schedule.filters == {"country": "DE,FR", "is_customer": "true", "min_health_score": "40"}


@pytest.mark.django_db
def test_an_analyst_may_schedule_the_personal_dataset(make_schedule, user_with_role):
    analyst = user_with_role(roles.MARKETING_ANALYST)

    schedule = make_schedule(owner=analyst, dataset="contacts", fields=["id", "email"])

    assert schedule.owner == analyst
