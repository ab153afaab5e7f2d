"""Scheduled exports in the admin: write-only secrets, per-object grants, Run now, downloads."""

import pytest
from auditlog.models import LogEntry
from django.contrib.messages import get_messages
from guardian.shortcuts import assign_perm

from audit.models import AccessLog
from exports.models import ExportDestination, ExportRun, ExportSchedule, RunStatus
from exports.services import destination_secret_names
from mktintegration import roles
from mktintegration.crypto import decrypt_secrets
from tests.fakes.receiver import FakeReceiver
from tests.fakes.sftp import fingerprint_sha256, generate_ed25519_key

SECRET = "pw-SUPER-secret-4711"
DESTINATIONS = "/admin/exports/exportdestination/"
SCHEDULES = "/admin/exports/exportschedule/"
RUNS = "/admin/exports/exportrun/"


def _destination_form(**overrides):
    form = {
        "name": "Agency SFTP",
        "kind": "sftp",
        "subdirectory": "",
        "retention_days": "30",
        "host": "127.0.0.1",
        "port": "2222",
        "username": "exporter",
        "remote_dir": "in",
        "host_key_fingerprint": fingerprint_sha256(generate_ed25519_key()),
        "url": "",
        "signature_header": "X-Mkt-Signature",
        "password": SECRET,
        "private_key": "",
        "hmac_secret": "",
    }
    return {**form, **overrides}


def _schedule_form(destination, **overrides):
    form = {
        "name": "Weekly clients",
        "enabled": "on",
        "dataset": "clients",
        "fields": "id, name, country",
        "filters": '{"country": "DE,FR"}',
        "format": "csv",
        "max_rows": "1000",
        "destination": str(destination.pk),
        "cron": "0 6 * * 1",
        "every_minutes": "",
    }
    return {**form, **overrides}


def _form_errors(response) -> dict:
    assert response.status_code == 200, response.status_code
    return response.context["adminform"].form.errors


def _messages(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


# --- who sees what ------------------------------------------------------------------------------

PAGES = {
    "schedules": SCHEDULES,
    "add schedule": f"{SCHEDULES}add/",
    "destinations": DESTINATIONS,
    "add destination": f"{DESTINATIONS}add/",
    "runs": RUNS,
}
# role -> the pages it may open (the others answer 403)
MAY_OPEN = {
    roles.MARKETING_MANAGER: {"schedules", "add schedule", "destinations", "runs"},
    roles.MARKETING_ANALYST: {"runs"},
    roles.INTEGRATION_ADMIN: set(PAGES),
    roles.AUDITOR: {"schedules", "destinations", "runs"},
    roles.API_CLIENT: set(),
}


@pytest.mark.django_db
@pytest.mark.parametrize("role", sorted(roles.ROLES))
def test_each_role_opens_only_its_export_pages(client_for, role, make_schedule, run_schedule):
    run_schedule(make_schedule())
    client = client_for(role)

    for page, url in PAGES.items():
        status = client.get(url).status_code
        assert status == (200 if page in MAY_OPEN[role] else 403), (role, page, status)


# --- destinations ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_destination_secret_is_stored_encrypted_and_never_shown(client, integration_admin):
    client.force_login(integration_admin)

    response = client.post(f"{DESTINATIONS}add/", _destination_form())

    assert response.status_code == 302, _form_errors(response)
    destination = ExportDestination.objects.get()
    assert SECRET not in destination.secret_ciphertext
    assert decrypt_secrets(destination.secret_ciphertext) == {"password": SECRET}
    change_page = client.get(f"{DESTINATIONS}{destination.pk}/change/").content.decode()
    assert SECRET not in change_page and destination.secret_ciphertext not in change_page
    assert "SFTP password: stored (hidden)" in change_page
    assert "Leave blank to keep the current value" in change_page
    list_page = client.get(DESTINATIONS).content.decode()
    assert SECRET not in list_page and "sftp://exporter@127.0.0.1:2222/in" in list_page
    assert "0 export destinations" in client.get(DESTINATIONS, {"q": SECRET}).content.decode()
    history = " ".join(str(entry.changes) for entry in LogEntry.objects.all())
    assert "Agency SFTP" in history and "secret_ciphertext" not in history


@pytest.mark.django_db
def test_a_blank_secret_keeps_the_stored_one_and_clear_removes_it(client, integration_admin):
    client.force_login(integration_admin)
    client.post(f"{DESTINATIONS}add/", _destination_form())
    destination = ExportDestination.objects.get()
    url = f"{DESTINATIONS}{destination.pk}/change/"

    client.post(url, _destination_form(password="", remote_dir="inbox"))
    destination.refresh_from_db()
    assert destination.remote_dir == "inbox"
    assert decrypt_secrets(destination.secret_ciphertext) == {"password": SECRET}

    response = client.post(url, _destination_form(password="", clear_secrets="on"))
    assert "needs a password or a private key" in _form_errors(response)["password"][0]
    client.post(url, _destination_form(password="new-pass-2", clear_secrets="on"))
    destination.refresh_from_db()
    assert destination_secret_names(destination) == ["password"]
    assert decrypt_secrets(destination.secret_ciphertext)["password"] == "new-pass-2"


@pytest.mark.django_db
def test_a_secret_typed_into_a_form_with_errors_is_not_echoed_back(client, integration_admin):
    client.force_login(integration_admin)

    response = client.post(
        f"{DESTINATIONS}add/",
        _destination_form(host_key_fingerprint="", private_key=f"-----BEGIN {SECRET}"),
    )

    errors = _form_errors(response)
    assert "host_key_fingerprint" in errors and "private_key" in errors
    assert SECRET not in response.content.decode()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("overrides", "field", "says"),
    [
        ({"host_key_fingerprint": "MD5:aa:bb"}, "host_key_fingerprint", "SHA256 host key"),
        ({"host": ""}, "host", "needs a host"),
        ({"password": ""}, "password", "needs a password or a private key"),
        ({"private_key": "not a key"}, "private_key", "not a private key"),
        ({"kind": "local", "subdirectory": "../etc"}, "subdirectory", "'..' is not allowed"),
        ({"kind": "local", "subdirectory": "/etc"}, "subdirectory", "not an absolute path"),
        ({"kind": "https", "url": "https://localhost:9/hook"}, "url", "internal address"),
        ({"kind": "https", "url": "https://x.example/h", "signature_header": "a b"}, None, None),
    ],
)
def test_destination_form_errors_name_the_field(
    client, integration_admin, settings, overrides, field, says
):
    settings.MKT_HTTP_ALLOW_PRIVATE_HOSTS = []
    client.force_login(integration_admin)

    response = client.post(f"{DESTINATIONS}add/", _destination_form(**overrides))

    errors = _form_errors(response)
    if field is None:  # a bad header name, and a host that does not resolve
        assert "signature_header" in errors and "url" in errors
    else:
        assert says in errors[field][0], errors
    assert not ExportDestination.objects.exists()


@pytest.mark.django_db
def test_a_manager_may_view_destinations_but_not_add_or_change_them(
    client, manager, local_destination
):
    client.force_login(manager)
    url = f"{DESTINATIONS}{local_destination.pk}/change/"

    assert client.get(DESTINATIONS).status_code == 200
    assert client.get(f"{DESTINATIONS}add/").status_code == 403
    page = client.get(url)
    assert page.status_code == 200 and b'name="password"' not in page.content
    client.post(url, _destination_form(kind="local", name="Renamed"))
    local_destination.refresh_from_db()
    assert local_destination.name == "Shared drive"


# --- schedules ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_manager_creates_a_schedule_and_is_granted_it(client, manager, local_destination):
    client.force_login(manager)

    response = client.post(f"{SCHEDULES}add/", _schedule_form(local_destination))

    assert response.status_code == 302, _form_errors(response)
    schedule = ExportSchedule.objects.get()
    assert schedule.owner == manager and schedule.fields == ["id", "name", "country"]
    assert schedule.filters == {"country": "DE,FR"} and schedule.min_interval_minutes == 15
    assert manager.has_perm("exports.run_exportschedule", schedule)
    assert client.get(f"{SCHEDULES}{schedule.pk}/change/").status_code == 200


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("overrides", "field", "says"),
    [
        ({"cron": "0 25 * * *"}, "cron", "is not a valid cron expression"),
        ({"cron": "*/5 * * * *"}, "cron", "at most every 15 minutes"),
        ({"cron": "", "every_minutes": "10"}, "every_minutes", "at most every 15 minutes"),
        ({"fields": "id, shoe_size"}, "fields", "unknown field(s): shoe_size"),
        ({"filters": '{"min_health_score": "high"}'}, "filters", "min_health_score: 'high'"),
        ({"filters": '{"country": '}, "filters", "Enter a valid JSON"),
        ({"dataset": "contacts"}, "dataset", "may not export the contacts dataset"),
    ],
)
def test_schedule_form_errors_name_the_field(
    client, manager, local_destination, overrides, field, says
):
    client.force_login(manager)

    response = client.post(f"{SCHEDULES}add/", _schedule_form(local_destination, **overrides))

    errors = _form_errors(response)
    assert says in " ".join(errors[field]), errors
    assert not ExportSchedule.objects.exists()


@pytest.mark.django_db
def test_only_admins_may_change_the_frequency_cap(
    client, manager, integration_admin, make_schedule
):
    schedule = make_schedule()
    client.force_login(manager)
    client.post(
        f"{SCHEDULES}{schedule.pk}/change/",
        _schedule_form(schedule.destination, min_interval_minutes="1", cron="*/5 * * * *"),
    )
    schedule.refresh_from_db()
    assert (schedule.min_interval_minutes, schedule.cron) == (15, "0 6 * * 1")

    client.force_login(integration_admin)
    response = client.post(
        f"{SCHEDULES}{schedule.pk}/change/",
        _schedule_form(schedule.destination, min_interval_minutes="5", cron="*/5 * * * *"),
    )
    assert response.status_code == 302, _form_errors(response)
    schedule.refresh_from_db()
    assert (schedule.min_interval_minutes, schedule.cron) == (5, "*/5 * * * *")


@pytest.mark.django_db
def test_a_manager_sees_only_granted_schedules_and_runs_and_gets_404_for_others(
    client, manager, user_with_role, make_schedule, run_schedule, companies
):
    nina = user_with_role(roles.MARKETING_MANAGER, username="nina")
    mine = make_schedule(name="Mona's file")
    hers = make_schedule(name="Nina's file", owner=nina)
    her_run = run_schedule(hers, user=nina)
    my_run = run_schedule(mine)
    client.force_login(manager)

    listing = client.get(SCHEDULES).content.decode()
    assert "Mona&#x27;s file" in listing and "Nina" not in listing
    assert client.get(f"{SCHEDULES}{mine.pk}/change/").status_code == 200
    assert client.get(f"{SCHEDULES}{hers.pk}/change/").status_code == 404
    assert client.get(f"{SCHEDULES}{hers.pk}/permissions/").status_code in (302, 404)
    runs = client.get(RUNS).content.decode()
    assert f"{RUNS}{my_run.pk}/change/" in runs and f"{RUNS}{her_run.pk}/change/" not in runs
    assert client.get(f"{RUNS}{her_run.pk}/change/").status_code == 404
    assert client.get(f"{RUNS}{her_run.pk}/download/").status_code == 404

    assign_perm("exports.view_exportschedule", manager, hers)  # a grant opens it
    assert client.get(f"{SCHEDULES}{hers.pk}/change/").status_code == 200
    assert client.get(f"{RUNS}{her_run.pk}/change/").status_code == 200


@pytest.mark.django_db
def test_run_now_queues_a_run_and_sends_its_task(
    django_capture_on_commit_callbacks, client, manager, make_schedule, sent_tasks
):
    schedule = make_schedule()
    client.force_login(manager)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            SCHEDULES, {"action": "run_now", "_selected_action": [schedule.pk]}, follow=True
        )

    run = ExportRun.objects.get()
    assert (run.status, run.trigger, run.triggered_by) == ("queued", "manual", manager)
    assert sent_tasks == [run.pk]
    assert f"Weekly clients 1: run {run.pk} queued." in _messages(response)


@pytest.mark.django_db
def test_run_now_is_refused_without_the_run_permission(
    client, user_with_role, manager, make_schedule
):
    nina = user_with_role(roles.MARKETING_MANAGER, username="nina")
    monas = make_schedule(name="Mona's file")
    ninas = make_schedule(name="Nina's file", owner=nina)
    assign_perm("exports.change_exportschedule", nina, monas)  # may edit, may not run
    client.force_login(nina)

    response = client.post(
        SCHEDULES, {"action": "run_now", "_selected_action": [monas.pk, ninas.pk]}, follow=True
    )
    button = client.post(f"{SCHEDULES}{monas.pk}/run/")

    assert list(ExportRun.objects.values_list("schedule__name", flat=True)) == ["Nina's file"]
    assert "You may not run Mona's file: nothing was started." in _messages(response)
    assert button.status_code == 403  # a POST one may not make is refused outright
    assert b">Run now</button>" not in client.get(f"{SCHEDULES}{monas.pk}/change/").content
    assert b">Run now</button>" in client.get(f"{SCHEDULES}{ninas.pk}/change/").content


@pytest.mark.django_db
def test_the_auditor_reads_schedules_and_runs_but_changes_and_runs_nothing(
    client, user_with_role, make_schedule
):
    schedule = make_schedule()
    client.force_login(user_with_role(roles.AUDITOR))

    assert client.get(f"{SCHEDULES}{schedule.pk}/change/").status_code == 200
    assert client.get(f"{SCHEDULES}add/").status_code == 403
    client.post(SCHEDULES, {"action": "run_now", "_selected_action": [schedule.pk]})
    client.post(f"{SCHEDULES}{schedule.pk}/run/")
    assert not ExportRun.objects.exists()
    assert client.get(RUNS).status_code == 200


@pytest.mark.django_db
def test_integration_admins_manage_object_permissions(client, integration_admin, make_schedule):
    schedule = make_schedule()
    client.force_login(integration_admin)

    assert client.get(f"{SCHEDULES}{schedule.pk}/permissions/").status_code == 200


# --- runs and downloads ------------------------------------------------------------------------


@pytest.mark.django_db
def test_downloading_a_local_file_streams_it_and_is_access_logged(
    client, settings, manager, make_schedule, run_schedule, companies
):
    run = run_schedule(make_schedule())
    client.force_login(manager)

    assert f"{RUNS}{run.pk}/download/" in client.get(RUNS).content.decode()
    response = client.get(f"{RUNS}{run.pk}/download/")

    assert response.status_code == 200
    body = b"".join(response.streaming_content)
    path = settings.MKT_EXPORT_DIR / run.destination_result["path"]
    assert body == path.read_bytes()
    assert f'filename="{run.file_name}"' in response["Content-Disposition"]
    log = AccessLog.objects.latest("id")
    assert (log.channel, log.actor, log.outcome, log.rows, log.bytes) == (
        "admin",
        "user:mona",
        "ok",
        3,
        len(body),
    )
    assert log.fields == ["id", "name", "country"] and log.client_address == "127.0.0.1"


@pytest.mark.django_db
def test_a_download_needs_the_datasets_permission_and_a_pruned_file_is_a_404(
    client, settings, user_with_role, manager, make_schedule, run_schedule, companies
):
    run = run_schedule(make_schedule())
    client.force_login(user_with_role(roles.AUDITOR))  # sees every run, exports no data

    assert client.get(f"{RUNS}{run.pk}/download/").status_code == 403
    assert AccessLog.objects.latest("id").outcome == "denied"

    (settings.MKT_EXPORT_DIR / run.destination_result["path"]).unlink()
    client.force_login(manager)
    assert client.get(f"{RUNS}{run.pk}/download/").status_code == 404
    assert client.get(f"{RUNS}{run.pk}/change/").status_code == 200


@pytest.mark.django_db
def test_the_run_page_shows_the_error_but_never_a_secret(
    tmp_path, settings, client, manager, make_destination, make_schedule, companies
):
    from exports.runs import export_run_execute
    from exports.services import export_run_start

    with FakeReceiver(tls_dir=tmp_path / "tls") as receiver:
        settings.MKT_HTTP_CA_BUNDLE = receiver.ca_path
        receiver.respond_with(401)
        destination = make_destination(
            "https", url=f"{receiver.url}/hook?token={SECRET}", secrets={"hmac_secret": SECRET}
        )
        run = export_run_start(
            schedule=make_schedule(destination=destination), trigger="manual", user=manager
        )
        export_run_execute(run_id=run.pk)
    client.force_login(manager)

    run.refresh_from_db()
    page = client.get(f"{RUNS}{run.pk}/change/").content.decode()
    assert run.status == RunStatus.FAILED and "answered HTTP 401" in page
    assert SECRET not in page and SECRET not in run.error
    assert SECRET not in client.get(RUNS).content.decode()
    assert SECRET not in " ".join(AccessLog.objects.values_list("detail", flat=True))
