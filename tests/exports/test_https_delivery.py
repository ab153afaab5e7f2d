"""Scheduled files POSTed over HTTPS to a real receiver on 127.0.0.1 (tests/fakes/receiver.py)
with a certificate from a throw-away CA (tests/fakes/tls.py)."""

import hashlib

import pytest
from celery.exceptions import Retry
from django.core.exceptions import ValidationError

from audit.models import AccessLog, OutboundLog
from exports.models import ExportDestination, RunStatus, RunTrigger
from exports.services import export_run_start
from exports.tasks import export_run_task
from tests.fakes.receiver import FakeReceiver, verify_hmac

SECRET = "whsec-0123456789-test-only"


@pytest.fixture
def receiver(tmp_path, settings):
    with FakeReceiver(tls_dir=tmp_path / "tls") as receiver:
        settings.MKT_HTTP_CA_BUNDLE = receiver.ca_path
        yield receiver


@pytest.fixture
def https_destination(make_destination, receiver):
    return make_destination(
        "https",
        name="BI inbox",
        url=f"{receiver.url}/incoming/files?source=mkt",
        secrets={"hmac_secret": SECRET},
    )


@pytest.fixture
def https_schedule(make_schedule, https_destination, companies):
    return make_schedule(name="BI feed", destination=https_destination)


def _attempt(run) -> str:
    try:
        export_run_task(run_id=run.pk)
    except Retry:
        return "retry"
    return "done"


def _start(schedule, user):
    return export_run_start(schedule=schedule, trigger=RunTrigger.MANUAL, user=user)


@pytest.mark.django_db
def test_https_post_is_tls_verified_and_signed_with_the_hmac_secret(
    receiver, https_schedule, manager
):
    run = _start(https_schedule, manager)

    assert _attempt(run) == "done"

    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, run.error
    (request,) = receiver.received
    assert (request.method, request.path, request.query) == (
        "POST",
        "/incoming/files",
        {"source": ["mkt"]},
    )
    assert verify_hmac(request, SECRET)  # the receiver's own check
    assert hashlib.sha256(request.body).hexdigest() == run.sha256
    assert len(request.body) == run.bytes
    assert request.header("Content-Type") == "text/csv; charset=utf-8"
    assert request.header("X-Mkt-Export-Sha256") == run.sha256
    assert request.header("X-Mkt-Export-Rows") == "3"
    assert request.header("X-Mkt-Export-File") == run.file_name
    assert request.header("Idempotency-Key") == f"mkt-export-run-{run.pk}"
    assert run.destination_result == {"url": f"{receiver.url}/incoming/files", "status": 200}
    outbound = OutboundLog.objects.get()
    assert (outbound.vendor, outbound.status, outbound.records) == ("https-export", 200, 3)
    assert AccessLog.objects.get().status_code == 200


@pytest.mark.django_db
def test_ndjson_files_carry_their_content_type_and_a_custom_signature_header(
    receiver, make_destination, make_schedule, companies, manager
):
    destination = make_destination(
        "https",
        url=f"{receiver.url}/hook",
        signature_header="X-Hub-Signature-256",
        secrets={"hmac_secret": SECRET},
    )
    run = _start(make_schedule(destination=destination, format="ndjson"), manager)

    _attempt(run)

    (request,) = receiver.received
    assert request.header("Content-Type") == "application/x-ndjson"
    assert verify_hmac(request, SECRET, header="X-Hub-Signature-256")
    assert request.header("X-Mkt-Signature") is None
    assert len(request.body.splitlines()) == 3


@pytest.mark.django_db
def test_without_a_signing_secret_no_signature_header_is_sent(
    receiver, make_destination, make_schedule, companies, manager
):
    destination = make_destination("https", url=f"{receiver.url}/hook")
    run = _start(make_schedule(destination=destination), manager)

    _attempt(run)

    assert receiver.received[0].header("X-Mkt-Signature") is None


@pytest.mark.django_db
def test_a_certificate_the_ca_bundle_does_not_trust_is_refused(
    receiver, https_schedule, manager, settings
):
    settings.MKT_HTTP_CA_BUNDLE = None  # the system bundle does not know the test CA
    run = _start(https_schedule, manager)

    assert _attempt(run) == "retry"

    run.refresh_from_db()
    assert "connection failed" in run.error
    assert receiver.received == []  # the handshake failed: no body was sent


@pytest.mark.django_db
def test_receiver_answering_503_twice_gets_the_file_on_the_third_attempt(
    receiver, https_schedule, manager
):
    receiver.respond_with(503, 503)
    run = _start(https_schedule, manager)

    outcomes = [_attempt(run) for _ in range(3)]

    run.refresh_from_db()
    assert outcomes == ["retry", "retry", "done"]
    assert run.status == RunStatus.SUCCEEDED and run.attempt == 3 and run.error == ""
    assert [r.status for r in receiver.received] == [503, 503, 200]
    assert all(verify_hmac(r, SECRET) for r in receiver.received)
    assert {r.header("X-Mkt-Export-File") for r in receiver.received} == {run.file_name}


@pytest.mark.django_db
def test_a_4xx_answer_fails_the_run_at_once(receiver, https_schedule, manager):
    receiver.respond_with(422)
    run = _start(https_schedule, manager)

    assert _attempt(run) == "done"

    run.refresh_from_db()
    assert run.status == RunStatus.FAILED and run.attempt == 1
    assert "answered HTTP 422" in run.error and "retrying will not help" in run.error
    assert len(receiver.received) == 1
    assert SECRET not in run.error
    assert AccessLog.objects.get().status_code == 422


@pytest.mark.django_db
def test_a_url_resolving_to_loopback_is_refused_at_save_unless_allow_listed(settings):
    settings.MKT_HTTP_ALLOW_PRIVATE_HOSTS = []
    destination = ExportDestination(name="Sneaky", kind="https", url="https://localhost:9/x")

    with pytest.raises(ValidationError) as error:
        destination.full_clean()

    assert "internal address" in error.value.message_dict["url"][0]
    settings.MKT_HTTP_ALLOW_PRIVATE_HOSTS = ["localhost"]
    destination.full_clean()


@pytest.mark.django_db
def test_plain_http_is_refused_for_a_public_host():
    destination = ExportDestination(name="Plain", kind="https", url="http://example.com/hook")

    with pytest.raises(ValidationError) as error:
        destination.full_clean()

    assert "must use https" in error.value.message_dict["url"][0]


@pytest.mark.django_db
def test_a_redirected_upload_fails_instead_of_passing_for_delivered(
    receiver, https_schedule, manager
):
    receiver.redirect_location = f"{receiver.url}/moved"
    receiver.respond_with(307)
    run = _start(https_schedule, manager)

    assert _attempt(run) == "done"

    run.refresh_from_db()
    assert run.status == RunStatus.FAILED
    assert "redirected the upload to" in run.error and "/moved" in run.error
    # The file stream cannot be replayed, so nothing (no empty POST) goes to the new address.
    assert [r.path for r in receiver.received] == ["/incoming/files"]
