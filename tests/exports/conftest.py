"""Fixtures for scheduled exports: users in roles, destinations, schedules, and running them
the way a worker would (tasks are called directly, never in eager mode)."""

from __future__ import annotations

import pytest

from exports.models import ExportDestination, ExportRun, ExportSchedule, RunTrigger
from exports.runs import export_run_execute
from exports.services import export_destination_save, export_run_start, export_schedule_save
from mktintegration import roles
from tests.exports.helpers import SFTP_PASSWORD
from tests.factories import CompanyFactory
from tests.fakes.sftp import FakeSFTPServer


@pytest.fixture(autouse=True)
def _export_settings(settings, tmp_path):
    settings.MKT_EXPORT_DIR = tmp_path / "exports"
    settings.MKT_EXPORT_RETRY_BASE_SECONDS = 0.01
    settings.MKT_EXPORT_MAX_ATTEMPTS = 3
    settings.MKT_HTTP_CA_BUNDLE = None


@pytest.fixture
def sent_tasks(monkeypatch):
    """The run ids export tasks were sent for (instead of the broker)."""
    from exports.tasks import export_run_task

    sent: list[int] = []
    monkeypatch.setattr(export_run_task, "delay", lambda *, run_id: sent.append(run_id))
    return sent


@pytest.fixture
def manager(user_with_role):
    return user_with_role(roles.MARKETING_MANAGER, username="mona")


@pytest.fixture
def integration_admin(user_with_role):
    return user_with_role(roles.INTEGRATION_ADMIN, username="ida")


@pytest.fixture
def companies(db):
    return [
        CompanyFactory(name="Alpha GmbH", country="DE"),
        CompanyFactory(name="Beta SARL", country="FR"),
        CompanyFactory(name="Gamma Inc", country="US", residency_region="us"),
    ]


@pytest.fixture
def make_destination(db):
    def make(kind="local", *, secrets=None, **fields) -> ExportDestination:
        defaults = {"name": f"{kind}-{ExportDestination.objects.count() + 1}", "kind": kind}
        destination = ExportDestination(**{**defaults, **fields})
        return export_destination_save(destination=destination, secrets=secrets or {})

    return make


@pytest.fixture
def local_destination(make_destination):
    return make_destination("local", name="Shared drive", subdirectory="marketing/weekly")


@pytest.fixture
def make_schedule(manager, local_destination):
    def make(*, owner=None, **fields) -> ExportSchedule:
        values = {
            "name": f"Weekly clients {ExportSchedule.objects.count() + 1}",
            "dataset": "clients",
            "fields": ["id", "name", "country"],
            "format": "csv",
            "destination": local_destination,
            "cron": "0 6 * * 1",
            **fields,
        }
        schedule = ExportSchedule(**values)
        return export_schedule_save(schedule=schedule, creator=owner or manager)

    return make


@pytest.fixture
def run_schedule(sent_tasks, manager):
    """Start a run (manual by default) and do the one attempt its task would do."""

    def run(schedule, *, trigger=RunTrigger.MANUAL, user=None) -> ExportRun:
        started = export_run_start(schedule=schedule, trigger=trigger, user=user or manager)
        if started.status == "queued":
            export_run_execute(run_id=started.pk)
        started.refresh_from_db()
        return started

    return run


@pytest.fixture
def server(tmp_path):
    """A real SFTP server on 127.0.0.1 (allow-listed in tests) with an empty out/ folder."""
    root = tmp_path / "sftp-root"
    (root / "out").mkdir(parents=True)
    with FakeSFTPServer(root, password=SFTP_PASSWORD) as server:
        yield server
