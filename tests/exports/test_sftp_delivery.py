"""Scheduled files over SFTP, against a real SFTP server on 127.0.0.1 (tests/fakes/sftp.py)."""

import io

import paramiko
import pytest
from celery.exceptions import Retry
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from audit.models import AccessLog
from exports.models import ExportRun, RunStatus, RunTrigger
from exports.runs import export_run_execute
from exports.services import export_run_start
from exports.tasks import export_run_task
from tests.exports.helpers import SFTP_PASSWORD as PASSWORD
from tests.factories import CompanyFactory
from tests.fakes.sftp import FakeSFTPServer, fingerprint_sha256, generate_ed25519_key


@pytest.fixture
def sftp_destination(make_destination, server):
    return make_destination(
        "sftp",
        name="Agency SFTP",
        host=server.host,
        port=server.port,
        username="exporter",
        remote_dir="out",
        host_key_fingerprint=server.fingerprint_sha256,
        secrets={"password": PASSWORD},
    )


@pytest.fixture
def sftp_schedule(make_schedule, sftp_destination, companies):
    return make_schedule(name="Agency feed", destination=sftp_destination)


def _attempt(run) -> str:
    """One delivery of the run's task, as the worker would run it."""
    try:
        export_run_task(run_id=run.pk)
    except Retry:
        return "retry"
    return "done"


def _start(schedule, user):
    return export_run_start(schedule=schedule, trigger=RunTrigger.MANUAL, user=user)


@pytest.mark.django_db
def test_sftp_upload_checks_the_pinned_key_writes_a_temporary_name_then_renames(
    server, sftp_schedule, run_schedule
):
    run = run_schedule(sftp_schedule)

    assert run.status == RunStatus.SUCCEEDED, run.error
    name = run.file_name
    assert server.files() == {f"out/{name}": server.root.joinpath("out", name).read_bytes()}
    assert run.destination_result == {
        "host": "127.0.0.1",
        "port": server.port,
        "remote_path": f"out/{name}",
        "size": run.bytes,
    }
    events = [e for e in server.events if e[0] in ("auth", "open", "posix_rename", "stat")]
    assert events[0] == ("auth", "exporter", "password", True)
    assert events[1] == ("open", f"out/.{name}.part", "wb")
    assert events.index(("posix_rename", f"out/.{name}.part", f"out/{name}")) > 1
    assert events[-1] == ("stat", f"out/{name}")
    assert len(server.files()[f"out/{name}"]) == run.bytes


@pytest.mark.django_db
def test_sftp_can_authenticate_with_a_private_key(tmp_path, make_destination, make_schedule):
    private = ed25519.Ed25519PrivateKey.generate()
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    ).decode()
    client_key = paramiko.Ed25519Key.from_private_key(io.StringIO(pem))
    with FakeSFTPServer(tmp_path / "root", authorized_key=client_key) as server:
        destination = make_destination(
            "sftp",
            host=server.host,
            port=server.port,
            username="exporter",
            host_key_fingerprint=server.fingerprint_sha256,
            secrets={"private_key": pem},
        )
        CompanyFactory()
        schedule = make_schedule(destination=destination)
        run = export_run_start(schedule=schedule, trigger=RunTrigger.SCHEDULE)
        export_run_execute(run_id=run.pk)

        run.refresh_from_db()
        assert run.status == RunStatus.SUCCEEDED, run.error
        assert ("auth", "exporter", "publickey", True) in server.events
        assert list(server.files()) == [run.file_name]


@pytest.mark.django_db
def test_a_changed_host_key_fails_at_once_and_nothing_is_uploaded(
    server, sftp_destination, sftp_schedule, manager
):
    pinned = fingerprint_sha256(generate_ed25519_key())
    sftp_destination.host_key_fingerprint = pinned
    sftp_destination.save()
    run = _start(sftp_schedule, manager)

    assert _attempt(run) == "done"  # no retry

    run.refresh_from_db()
    assert run.status == RunStatus.FAILED and run.attempt == 1
    assert run.error.startswith(
        f"host key mismatch: expected {pinned}, server offered {server.fingerprint_sha256}"
    )
    assert server.files() == {}
    assert not [e for e in server.events if e[0] in ("auth", "open")]  # not even a login
    assert PASSWORD not in run.error


@pytest.mark.django_db
def test_sftp_server_down_is_retried_then_the_run_fails_with_the_reason(
    server, sftp_schedule, manager, settings
):
    server.stop()
    run = _start(sftp_schedule, manager)

    outcomes = [_attempt(run) for _ in range(settings.MKT_EXPORT_MAX_ATTEMPTS)]

    run.refresh_from_db()
    assert outcomes == ["retry", "retry", "done"]
    assert run.status == RunStatus.FAILED and run.attempt == 3
    assert run.error.startswith("gave up after 3 attempts: sftp: cannot connect to 127.0.0.1:")
    assert "ConnectionRefusedError" in run.error
    logs = AccessLog.objects.filter(channel="file").order_by("id")
    assert [log.outcome for log in logs] == ["error", "error", "error"]
    assert "attempt 1 of 3 failed, retrying in" in logs[0].detail


@pytest.mark.django_db
def test_a_retry_waits_queued_with_its_attempt_counted(server, sftp_schedule, manager):
    server.stop()
    run = _start(sftp_schedule, manager)

    _attempt(run)

    run.refresh_from_db()
    assert (run.status, run.attempt) == (RunStatus.QUEUED, 1)
    assert run.due_at > run.started_at
    assert "attempt 1 of 3 failed, retrying in" in run.error


@pytest.mark.django_db
def test_a_truncated_upload_is_removed_retried_then_failed(server, sftp_schedule, manager):
    server.truncate_writes()
    run = _start(sftp_schedule, manager)

    outcomes = [_attempt(run) for _ in range(3)]

    run.refresh_from_db()
    assert outcomes == ["retry", "retry", "done"]
    assert run.status == RunStatus.FAILED
    assert "is incomplete: the server holds" in run.error and f"of {run.bytes} bytes" in run.error
    assert server.files() == {}  # the partial file was removed, never renamed into place
    assert not [e for e in server.events if e[0] == "posix_rename"]


@pytest.mark.django_db
def test_a_connection_dropped_mid_upload_is_retried_and_then_delivered(
    server, sftp_schedule, manager
):
    CompanyFactory.create_batch(40)
    server.disconnect_after_bytes(500)
    run = _start(sftp_schedule, manager)

    outcomes = [_attempt(run), _attempt(run)]

    run.refresh_from_db()
    assert outcomes == ["retry", "done"]
    assert run.status == RunStatus.SUCCEEDED and run.attempt == 2
    assert list(server.files()) == [f"out/{run.file_name}"]  # same name: nothing duplicated
    assert len(server.files()[f"out/{run.file_name}"]) == run.bytes > 500


@pytest.mark.django_db
def test_a_refused_password_fails_at_once_without_showing_it(
    server, make_destination, make_schedule, manager
):
    destination = make_destination(
        "sftp",
        host=server.host,
        port=server.port,
        username="exporter",
        host_key_fingerprint=server.fingerprint_sha256,
        secrets={"password": "hunter2-wrong-password"},
    )
    run = _start(make_schedule(destination=destination), manager)

    assert _attempt(run) == "done"

    run.refresh_from_db()
    assert run.status == RunStatus.FAILED and run.attempt == 1
    assert "refused user 'exporter' with the stored password" in run.error
    assert "hunter2" not in run.error
    assert "hunter2" not in AccessLog.objects.latest("id").detail
    assert "hunter2" not in str(ExportRun.objects.values().get(pk=run.pk))
